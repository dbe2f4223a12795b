"""Judge the image-to-video model F alone: animate the rendered first frame of each prompt of a Shapes World
evaluation set (the scene the prompt and seed describe) and score the 16-frame, 4 fps video with the judge.
This separates F from the text-to-image stage, which draws the first frame in `emu-video generate`.

    python scripts/eval_video_model.py --set eval-two --limit 32
"""

from __future__ import annotations

import argparse
import time

import torch

from emu_video.pipelines import ImageToVideoPipeline
from emu_video.shapes import judge, load_eval_set
from emu_video.shapes.evaluate import summarize_reports
from emu_video.shapes.grammar import scene_from_prompt
from emu_video.shapes.render import render_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--set", dest="sets", action="append", help="evaluation set(s) (default eval-two)")
    p.add_argument("--limit", type=int, default=16, help="first K prompts of each set (default 16)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the model's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--verbose", action="store_true", help="print each prompt's expected and detected motions")
    args = p.parse_args()
    pipe = ImageToVideoPipeline.from_pretrained(args.model, device=args.device)
    for name in args.sets or ["eval-two"]:
        items = list(load_eval_set(name))[: args.limit]
        t0, reports = time.time(), []
        for it in items:
            first = render_image(scene_from_prompt(it.prompt, seed=it.seed))
            video = pipe(first, it.prompt, seed=it.seed, num_inference_steps=args.steps, progress=False)
            reports.append(judge(video.frames, it.prompt, fps=video.fps))
            if args.verbose:
                print(f"  {it.prompt}: " + ", ".join(f"{o['motion']['expected']} -> {o['motion']['detected']}"
                                                     for o in reports[-1]["objects"]), flush=True)
        scores = summarize_reports(reports)
        print(f"{name}: F on rendered first frames: faithful {100 * scores['faithful']:.1f} %, motion "
              f"{100 * scores['motion']:.1f} % of objects ({len(items)} prompts, {time.time() - t0:.0f} s)",
              flush=True)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
