"""`emu-video evaluate`: FVD, IS, CLIPSIM, image-to-video and weight-free metrics over folders of videos."""

from __future__ import annotations

import json
import os
from pathlib import Path

from emu_video.errors import UserError

EPILOG = (
    "Weights are never downloaded: --i3d takes i3d_pretrained_400.pt (cd-fvd / TATS state dict) or StyleGAN-V's "
    "i3d_torchscript.pt; --videomae the VideoMAE-v2 vit_g_hybrid_pt_1200e_ssv2_ft.pth (cd-fvd's) or a transformers "
    "VideoMAE folder; --c3d takes StyleGAN-V's c3d_ucf101.pt; --clip a transformers CLIP folder such as "
    "openai/clip-vit-base-patch32. Prompt files are JSON lines {\"file\": \"0001.mp4\", \"prompt\": \"...\"} "
    "(plus \"image\": \"cond.png\" for i2v). docs/evaluation.md lists where to get each file and the published "
    "numbers to compare with. I3D and VideoMAE features are cached per folder (see --cache). Example: emu-video evaluate --real ucf_real --fake ours --fake baseline "
    "--metrics fvd,flicker,motion --i3d i3d_pretrained_400.pt --out report.json"
)


def register(subparsers) -> None:
    from emu_video.evaluation.report import METRICS

    p = subparsers.add_parser(
        "evaluate",
        help="score folders of generated videos: FVD, IS, CLIPSIM, i2v, flicker, motion, Shapes World judge",
        description="Compute the field's video metrics for one or more folders of generated videos (and a folder "
        "of real videos for FVD), print one table row per folder, and write a JSON report and a PNG bar chart. "
        "Metrics: " + "; ".join(f"{k}: {v}" for k, v in METRICS.items()) + ".",
        epilog=EPILOG,
    )
    p.add_argument("--real", type=Path, metavar="DIR", help="folder of real videos (FVD reference)")
    p.add_argument("--fake", type=Path, metavar="DIR", action="append", default=[], required=True,
                   help="folder of generated videos; repeat to compare several models in one table")
    p.add_argument("--metrics", default="flicker,motion,motion_vectors",
                   help="comma-separated metrics (default: the weight-free flicker,motion,motion_vectors)")
    p.add_argument("--i3d", type=Path, metavar="FILE", help="I3D weights for FVD (i3d_pretrained_400.pt or "
                   "i3d_torchscript.pt)")
    p.add_argument("--videomae", type=Path, metavar="PATH",
                   help="VideoMAE weights for cdfvd: vit_g_hybrid_pt_1200e_ssv2_ft.pth (VideoMAE-v2 ViT-g, SSv2) or a "
                        "transformers VideoMAE folder; clips must then be the model's 16 frames")
    p.add_argument("--c3d", type=Path, metavar="FILE", help="C3D UCF-101 TorchScript for IS (c3d_ucf101.pt)")
    p.add_argument("--clip", type=Path, metavar="DIR", help="transformers CLIP folder for clipsim/i2v")
    p.add_argument("--prompts", type=Path, metavar="FILE.jsonl", help="prompt per video file name")
    p.add_argument("--frames", type=int, default=16, help="frames per clip for FVD (default 16; IS always 16)")
    p.add_argument("--stride", type=int, default=1, help="take every STRIDE-th frame (default 1)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per network batch (default 16)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="network precision (default fp32; bf16 on CUDA for large sets)")
    p.add_argument("--limit", type=int, help="use the first N videos of each folder (sorted by path; sub-folders included)")
    p.add_argument("--out", type=Path, default=Path("evaluation.json"), metavar="REPORT.json",
                   help="JSON report (default evaluation.json); the plot goes next to it as REPORT.png")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    p.add_argument("--cache", type=Path, metavar="DIR", default=None,
                   help="keep each folder's I3D (and VideoMAE) features here and reuse them while the folder's files (names, sizes, "
                        "modification times), the network file and --frames/--stride/--dtype stay the same (default: "
                        "feature-cache/ next to the report)")
    p.add_argument("--no-cache", action="store_true", help="compute every feature again and write no cache")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import torch

    from emu_video.evaluation.report import (
        EvalSettings,
        evaluate,
        format_table,
        parse_metrics,
        plot_report,
    )

    if args.frames < 1 or args.stride < 1 or args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise UserError("--frames, --stride, --batch-size and --limit must be positive")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {args.device}: CUDA is not available on this machine")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    settings = EvalSettings(
        metrics=parse_metrics(args.metrics), i3d=args.i3d, videomae=args.videomae, c3d=args.c3d, clip=args.clip, prompts=args.prompts,
        frames=args.frames, stride=args.stride, batch_size=args.batch_size, device=args.device, dtype=dtype,
        limit=args.limit, cache=None if args.no_cache else (args.cache or Path(args.out).parent / "feature-cache"),
    )
    report = evaluate(args.real, args.fake, settings)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    print(format_table(report))
    for entry in report.get("feature_cache", {}).values():
        net = {"i3d": "I3D", "videomae": "VideoMAE"}[entry["network"]]
        print(f"{net} features of {entry['folder']}: {entry['status']} ({entry['file']})")
    print(f"report: {out}")
    if not args.no_plot:
        print(f"plot: {plot_report(report, out.with_suffix('.png'))}")
    return 0
