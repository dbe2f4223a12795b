"""Judge the text-to-image stage alone: draw the first frame of each prompt of a Shapes World evaluation
set and count the images that show every named object with its colour and shape.

    python scripts/eval_first_frames.py --set eval-two --limit 32 --guidance 4 7.5 10 --steps 10 20
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from emu_video.pipelines import TextToImagePipeline
from emu_video.shapes import judge, load_eval_set


def score(pipe, items, guidance: float, steps: int) -> dict:
    right = objects = shapes = colours = 0
    for it in items:
        image = np.asarray(pipe(it.prompt, seed=it.seed, num_inference_steps=steps, guidance_scale=guidance,
                                progress=False).image)
        objs = judge(image[None], it.prompt, fps=16.0)["objects"]
        objects += len(objs)
        shapes += sum(o["shape"]["ok"] for o in objs)
        colours += sum(o["color"]["ok"] for o in objs)
        right += all(o["found"]["ok"] and o["color"]["ok"] and o["shape"]["ok"] for o in objs)
    return {"right": right / len(items), "shape": shapes / objects, "colour": colours / objects}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--set", dest="sets", action="append", help="evaluation set(s) (default eval-two, eval-seen)")
    p.add_argument("--limit", type=int, default=32, help="first K prompts of each set (default 32)")
    p.add_argument("--guidance", type=float, nargs="+", default=[7.5], help="first-frame guidance scales")
    p.add_argument("--steps", type=int, nargs="+", default=[10], help="DDIM step counts")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.manual_seed(0)
    pipe = TextToImagePipeline.from_pretrained(args.model, device=args.device)
    for name in args.sets or ["eval-two", "eval-seen"]:
        items = list(load_eval_set(name))[: args.limit]
        for guidance, steps in itertools.product(args.guidance, args.steps):
            t0 = time.time()
            s = score(pipe, items, guidance, steps)
            print(f"{name}: guidance {guidance:g}, {steps} steps: images right {100 * s['right']:.1f} %, "
                  f"shape {100 * s['shape']:.1f} %, colour {100 * s['colour']:.1f} % "
                  f"({len(items)} prompts, {time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
