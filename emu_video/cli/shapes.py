"""`emu-video shapes ...`: Shapes World, the built-in synthetic video domain (render, judge, data, evaluation)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from emu_video.errors import UserError
from emu_video.shapes.datasets import (
    IMAGE_TWO_OBJECT_FRACTION,
    VIDEO_TWO_OBJECT_FRACTION,
)

EPILOG_GRAMMAR = (
    "Prompts follow the caption grammar: 'a {color} {shape} {motion} [on a {background} background]', or two "
    "such clauses joined by 'and' (background at the end). Colours: red green blue yellow purple orange white; "
    "shapes: circle (ball, disc), square (box, block), triangle; motions: moves left/right/up/down, stays still, "
    "grows, shrinks (and synonyms); backgrounds: black, gray (grey), beige."
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "shapes",
        help="Shapes World: render clips from prompts, judge videos, write datasets, evaluate models",
        description=(
            "Shapes World is the project's synthetic video domain: coloured circles, squares and triangles that "
            "move, grow or shrink on a flat background (128x128, 65 frames at 16 fps). Every clip comes from a "
            "known scene, so a deterministic judge can say whether a video shows what its prompt asks for."
        ),
        epilog=EPILOG_GRAMMAR,
    )
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])
    sub = p.add_subparsers(dest="shapes_command", metavar="SUBCOMMAND")

    r = sub.add_parser(
        "render",
        help="render the ground-truth clip of a prompt",
        description="Render the clip a prompt describes (sizes, positions and an omitted background come from "
        "--seed) to an H.264 mp4 or a GIF, and print its scene as JSON.",
        epilog=EPILOG_GRAMMAR,
    )
    r.add_argument("prompt", help="e.g. 'a red circle moves left on a black background'")
    r.add_argument("--seed", type=int, default=0, help="seed for the free choices (default 0)")
    r.add_argument("--out", default="shapes.mp4", help="output file, .mp4 or .gif (default shapes.mp4)")
    r.add_argument("--gif", action="store_true", help="also write a GIF next to the mp4 (same name, .gif)")
    r.add_argument("--image", metavar="FILE.png", help="also write the first frame as an image")
    r.set_defaults(func=_render)

    j = sub.add_parser(
        "judge",
        help="judge a video (or image) against a prompt and print the JSON report",
        description="Read a video or image file and report, per object the prompt names, whether it is found "
        "and has the named colour, shape and motion, plus the background and temporal consistency; "
        "'faithful' is true when every named attribute matches. Exits 0 whatever the verdict "
        "(2 when the file cannot be read or the prompt is outside the grammar).",
        epilog=EPILOG_GRAMMAR,
    )
    j.add_argument("file", help="video (.mp4, .gif, ...) or image (.png, ...) file")
    j.add_argument("--prompt", required=True, help="the prompt the clip should show")
    j.add_argument("--fps", type=float, default=None, help="override the file's frame rate")
    j.add_argument("--compact", action="store_true", help="print the report on one line")
    j.set_defaults(func=_judge)

    d = sub.add_parser(
        "make-dataset",
        help="write a Shapes World training set (mp4 clips + png first frames with JSONL manifests)",
        description="Write OUT/videos/NNNNNN.mp4 with OUT/videos.jsonl and OUT/images/NNNNNN.png with "
        "OUT/images.jsonl. Video clips never contain the held-out colour-shape pairs (yellow triangle, blue "
        "circle, green square, purple square, white triangle); images cover every colour x shape x background "
        "combination. Captions use random synonyms. The same arguments always give the same files.",
    )
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--videos", type=int, default=1000, help="number of video clips (default 1000)")
    d.add_argument("--images", type=int, default=1000, help="number of images (default 1000)")
    d.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    d.add_argument("--two-objects", type=float, default=None, metavar="FRACTION",
                   help=f"fraction of two-object video clips (default {VIDEO_TWO_OBJECT_FRACTION})")
    d.add_argument("--image-two-objects", type=float, default=None, metavar="FRACTION",
                   help=f"fraction of two-object images (default {IMAGE_TWO_OBJECT_FRACTION})")
    d.add_argument("--motion-captions", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of images that are first frames of clips, captioned with their motions and "
                   "placed so the motions can play out (default 0: motion-free captions; the default model's "
                   "text-to-image training used 0.5)")
    d.add_argument("--workers", type=int, default=1, help="processes rendering and encoding in parallel")
    d.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    d.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    d.set_defaults(func=_make_dataset)

    e = sub.add_parser(
        "evaluate",
        help="generate each prompt of an evaluation set with a model and score it with the judge",
        description="Load a text-to-video model, generate every (prompt, seed) of the chosen evaluation sets "
        "(eval-seen: colour-shape pairs seen in video training; eval-heldout: the five held-out pairs; "
        "eval-two: two-object prompts), judge each clip and print the scores as JSON and as a table.",
    )
    e.add_argument("--model", default=None, help="model folder (default: the default model)")
    e.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="eval-seen, eval-heldout, eval-two or all (repeatable; default all)")
    e.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    from emu_video.cli.generate import sampler_names

    e.add_argument("--sampler", default=None, choices=sampler_names(),
                   help="ddim, dpmpp-2m, euler or euler-ancestral (default: the model's, ddim)")
    e.add_argument("--direct", action="store_true",
                   help="evaluate the direct text-to-video layout (no first frame) instead of the factorized chain")
    e.add_argument("--interp-steps", type=int, default=None, help="sampler steps of the interpolation model "
                   "(default: the model's interpolation steps, whatever --steps says)")
    e.add_argument("--w-img", type=float, default=None, help="video image guidance w_img (default: the model's)")
    e.add_argument("--w-txt", type=float, default=None, help="video text guidance w_txt (default: the model's)")
    e.add_argument("--image-guidance", type=float, default=None,
                   help="guidance scale of the first frame (default: the model's)")
    e.add_argument("--seed-offset", type=int, default=0, help="added to every seed of the set")
    e.add_argument("--limit", type=int, default=None, metavar="K", help="only the first K prompts of each set")
    e.add_argument("--out", default=None, help="folder for videos, per-clip reports and scores")
    e.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    e.add_argument("--dtype", default=None, help="model dtype, e.g. float32 or bfloat16 (default: the model's)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    e.set_defaults(func=_evaluate)


def _render(args) -> int:
    from emu_video.io.video import write_image, write_video
    from emu_video.shapes.grammar import caption, scene_from_prompt
    from emu_video.shapes.palette import FPS
    from emu_video.shapes.render import render

    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise UserError(f"--out must end in .mp4 or .gif, got {out.name}")
    scene = scene_from_prompt(args.prompt, args.seed)
    frames = render(scene)
    written = [write_video(out, frames, FPS)]
    if args.gif and out.suffix.lower() != ".gif":
        written.append(write_video(out.with_suffix(".gif"), frames, FPS))
    if args.image:
        written.append(write_image(args.image, frames[0]))
    print(json.dumps({"caption": caption(scene), "seed": args.seed, "scene": scene.to_dict(),
                      "files": [str(p) for p in written]}, indent=2))
    return 0


def _judge(args) -> int:
    from emu_video.shapes.judge import judge

    report = judge(args.file, args.prompt, fps=args.fps)
    report["file"] = str(args.file)
    print(json.dumps(report, indent=None if args.compact else 2))
    return 0


def _make_dataset(args) -> int:
    from emu_video.shapes import datasets

    kwargs = {}
    if args.two_objects is not None:
        kwargs["video_two_object_fraction"] = args.two_objects
    if args.image_two_objects is not None:
        kwargs["image_two_object_fraction"] = args.image_two_objects
    summary = datasets.make_dataset(
        args.out, args.videos, args.images, seed=args.seed, workers=args.workers,
        image_motion_captions=args.motion_captions,
        overwrite=args.overwrite, progress=not args.no_progress, **kwargs,
    )
    print(json.dumps(summary, indent=2))
    return 0


def _resolve_sets(values) -> list[str]:
    from emu_video.shapes.evalsets import EVAL_SET_NAMES

    names: list[str] = []
    for v in values or ["all"]:
        for n in v.split(","):
            n = n.strip()
            if n == "all":
                names += [x for x in EVAL_SET_NAMES if x not in names]
            elif n in EVAL_SET_NAMES:
                if n not in names:
                    names.append(n)
            else:
                raise UserError(f"unknown evaluation set {n!r}; choose from {', '.join(EVAL_SET_NAMES)} or all")
    return names


def _evaluate(args) -> int:
    from emu_video.cli.generate import check_args
    from emu_video.shapes.evaluate import evaluate_sets, format_table

    names = _resolve_sets(args.sets)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    check_args(args)  # steps, guidance weights, device: refused before the model loads
    if args.out:
        out = Path(args.out).resolve()
        existing = next(p for p in (out, *out.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"cannot write into {args.out}: {existing} is not a writable folder")
    import numpy as np

    try:
        from emu_video.pipelines import TextToVideoPipeline
    except ImportError as exc:
        raise UserError(f"the text-to-video pipeline is not available: {exc}") from exc

    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    load_kwargs = {"device": device}
    if args.dtype is not None:
        load_kwargs["dtype"] = args.dtype
    pipe = TextToVideoPipeline.from_pretrained(args.model, **load_kwargs)
    chosen = {"num_inference_steps": args.steps, "interpolation_steps": args.interp_steps, "w_img": args.w_img,
              "w_txt": args.w_txt, "image_guidance": args.image_guidance, "sampler": args.sampler,
              "direct": args.direct or None}
    settings = {k: v for k, v in chosen.items() if v is not None}  # what the user set, for the summary
    call_kwargs = {**settings, "progress": False}  # one progress bar for the whole set, not one per clip

    def generate(prompt: str, seed: int):
        result = pipe(prompt, seed=seed, **call_kwargs)
        return np.asarray(result.frames), float(result.fps)

    results = evaluate_sets(names, generate, out_dir=args.out, progress=not args.no_progress,
                            limit=args.limit, seed_offset=args.seed_offset)
    summary = {"model": args.model, "steps": args.steps, "settings": settings,
               "sets": {r["set"]: {k: v for k, v in r.items() if k != "clips"} for r in results}}
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    print(format_table(results), file=sys.stdout)
    return 0
