#!/usr/bin/env python3
"""Did a fine-tune learn a new word? Draw first frames with the text-to-image stage of each model folder for
every Shapes World evaluation prompt that names the old word (e.g. "red"), once as it is and once with the new
word ("vermilion"), and judge each image against the prompt as it was: for the objects of the old word, is
their colour right, and which colour was drawn.

    emu-video train --config configs/stages/shapes_world/lora_new_word.toml          # ~3 min on 2 CPU cores
    python scripts/lora_new_word.py --model emu_video/default_model --model runs/shapes_world/lora_new_word/model

The second folder is the default model with the adapter merged (`train` writes it next to OUTPUT/lora).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch


def word_items(old: str, sets: list[str], seeds: int) -> list[tuple[str, int]]:
    from emu_video.shapes import load_eval_set

    items = []
    for name in sets:
        for it in load_eval_set(name).items:
            if re.search(rf"\b{re.escape(old)}\b", it.prompt):
                items += [(it.prompt, it.seed + 1000 * k) for k in range(seeds)]
    return items


def judge_word(pipe, items, old: str, new: str | None, steps: int) -> dict:
    """For prompts said with `new` in place of `old` (or as they are): the share of `old`-coloured objects
    drawn in that colour, the share of images with every object right, and the colours drawn instead."""
    from emu_video.shapes import judge
    from emu_video.shapes.rename import rename_words

    hits = objects = right = 0
    drawn = collections.Counter()
    for prompt, seed in items:
        shown = rename_words(prompt, {old: new}) if new else prompt
        image = np.asarray(pipe(shown, seed=seed, num_inference_steps=steps, progress=False).image)
        objs = judge(image[None], prompt, fps=16.0)["objects"]
        right += all(o["found"]["ok"] and o["color"]["ok"] and o["shape"]["ok"] for o in objs)
        for o in objs:
            if o["color"]["expected"] == old:
                objects += 1
                hits += bool(o["found"]["ok"] and o["color"]["ok"])
                drawn[o["color"]["detected"] if o["found"]["ok"] else "not found"] += 1
    return {"prompts": len(items), "objects": objects, "colour_right": hits / max(objects, 1),
            "images_right": right / max(len(items), 1), "drawn": dict(drawn.most_common())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="model folder (repeat to compare)")
    p.add_argument("--old", default="red", help="the word the model knows (default red)")
    p.add_argument("--new", default="vermilion", help="the word the fine-tune was taught (default vermilion)")
    p.add_argument("--set", dest="sets", action="append", help="evaluation sets (default eval-seen, eval-two)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per prompt (default 2)")
    p.add_argument("--steps", type=int, default=10, help="sampler steps (default 10)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, help="JSON file for the results")
    args = p.parse_args(argv)
    from emu_video.pipelines import TextToImagePipeline

    items = word_items(args.old, args.sets or ["eval-seen", "eval-two"], args.seeds)
    if not items:
        print(f"no evaluation prompt names {args.old!r}", file=sys.stderr)
        return 2
    results = []
    for model in args.model:
        pipe = TextToImagePipeline.from_pretrained(model, device=args.device)
        for word in (args.new, None):
            t0 = time.time()
            torch.manual_seed(0)
            r = judge_word(pipe, items, args.old, word, args.steps)
            r.update(model=model, word=word or args.old, seconds=round(time.time() - t0, 1))
            results.append(r)
            print(f"{model}: '{r['word']}' prompts: {args.old} objects drawn {args.old} {100 * r['colour_right']:.1f} % "
                  f"of {r['objects']}, images right {100 * r['images_right']:.1f} %, drawn {r['drawn']}", flush=True)
    print("\n| model | prompts say | objects drawn " + args.old + " | images right | colours drawn |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['word']} | {100 * r['colour_right']:.1f} % ({r['objects']}) | "
              f"{100 * r['images_right']:.1f} % ({r['prompts']}) | {r['drawn']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"old": args.old, "new": args.new, "steps": args.steps, "results": results},
                                       indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
