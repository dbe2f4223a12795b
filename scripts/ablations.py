#!/usr/bin/env python3
"""The paper's ablations (Table 1) on Shapes World: train both arms of a comparison with equal compute, judge
them on the same (prompt, seed) items, and report faithfulness, quality proxies and paired win rates with 95 %
intervals. docs/ablations.md has the results and the exact commands.

  python scripts/ablations.py train --compare a --steps 800                 # resumable; runs of <= 9 min
  python scripts/ablations.py evaluate --compare a --seeds 0 1000 --device cuda
  python scripts/ablations.py report --compare a                            # results.json and a table
  python scripts/ablations.py plot ablations/*/results.json --out docs/ablations.png --label "GPU, date"
  python scripts/ablations.py package --compare a --out ablations/factorized_vs_direct

Comparisons: a factorized_vs_direct, b zero_snr_vs_quad, c frozen_vs_trained_spatial (budget in steps:
--steps, the same steps x batch for both arms), d multistage_vs_single (budget in training minutes:
--minutes). Extra key=value arguments of `train` go to every `emu-video train` run (e.g. train.batch_size=32).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _comparisons(keys):
    from emu_video.shapes.ablations import COMPARISONS, comparison

    return [comparison(k) for k in keys] if keys else list(COMPARISONS.values())


def cmd_train(args) -> int:
    from emu_video.errors import UserError
    from emu_video.pipelines.components import DEFAULT_MODEL_DIR
    from emu_video.shapes.ablations import (
        TrainPlan,
        in_process_runner,
        subprocess_runner,
        train_comparison,
    )

    done = True
    for comp in _comparisons(args.compare):
        budget = args.steps if comp.budget == "steps" else args.minutes
        if not budget:
            raise UserError(f"comparison {comp.key} ({comp.name}) is budgeted in {comp.budget}: give --{comp.budget}")
        plan = TrainPlan(Path(args.configs), Path(args.runs), Path(args.base_model or DEFAULT_MODEL_DIR), budget,
                         args.run_minutes, args.overrides,
                         in_process_runner if args.in_process else subprocess_runner)
        done = train_comparison(plan, comp, args.session_minutes) and done
    return 0 if done else 3


def _pipeline_fn(model, direct, args):
    import numpy as np

    from emu_video.pipelines import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(model, device=args.device, dtype=args.dtype)
    kw = {"direct": direct, "progress": False, "interpolate": not args.no_interpolation}
    if args.steps:
        kw["num_inference_steps"] = args.steps
    if args.interp_steps:
        kw["interpolation_steps"] = args.interp_steps

    def generate(prompt: str, seed: int):
        out = pipe(prompt, seed=seed, **kw)
        return np.asarray(out.frames), float(out.fps)

    return generate


def _saver(kind: str):
    if kind == "none":
        return None
    if kind == "mp4":
        from emu_video.io.video import write_video

        return lambda path, frames, fps: write_video(path, frames, fps)
    from emu_video.shapes.ablation_media import save_webp

    return save_webp


def cmd_evaluate(args) -> int:
    from emu_video.shapes.ablation_eval import eval_items, judge_arm
    from emu_video.shapes.ablations import arm_model

    shard = tuple(int(x) for x in args.shard.split("/")) if args.shard else (0, 1)
    # N shards run as N processes at once: each takes its share of the processors, not all of them (N
    # processes of one thread per processor each would wait on each other at every step).
    import torch

    from emu_video.cpu_threads import allowed_cpus

    torch.set_num_threads(args.threads or max(1, allowed_cpus() // shard[1]))
    items = eval_items(args.set or None, args.seeds, args.limit) if args.set else eval_items(
        seed_offsets=args.seeds, limit=args.limit)
    for comp in _comparisons(args.compare):
        for arm in comp.arms:
            if args.arm and arm.run not in args.arm:
                continue
            out = Path(args.out) / comp.name / arm.run
            gen = _pipeline_fn(arm_model(Path(args.runs), arm), arm.direct, args)
            path = judge_arm(gen, items, out, shard, _saver(args.save), progress=not args.quiet)
            print(f"{comp.name}/{arm.run}: {path}")
    return 0


def cmd_report(args) -> int:
    from emu_video.shapes.ablation_report import write_report

    for comp in _comparisons(args.compare):
        res = write_report(comp, Path(args.out) / comp.name, Path(args.runs), args.label)
        print(res["table"])
    return 0


def cmd_plot(args) -> int:
    from emu_video.shapes.ablation_report import plot_win_rates

    results = [json.loads(Path(p).read_text()) for p in args.results]
    print(plot_win_rates(results, Path(args.out), args.label))
    return 0


def cmd_package(args) -> int:
    from emu_video.shapes.ablation_report import package_videos

    for comp in _comparisons(args.compare):
        dest = Path(args.dest)
        print(package_videos(comp, Path(args.out) / comp.name, dest, args.max_items, crf=args.crf))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/ablations.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(q, runs=True, out=True):
        q.add_argument("--compare", action="append", metavar="KEY",
                       help="a, b, c, d or a comparison's name (repeatable; default: all)")
        if runs:
            q.add_argument("--runs", default="runs/ablations", help="training outputs (default runs/ablations)")
        if out:
            q.add_argument("--out", default="runs/ablations/eval", help="evaluation outputs, one folder per "
                           "comparison and arm (default runs/ablations/eval)")

    t = sub.add_parser("train", help="train both arms of each comparison with equal compute (resumable)")
    common(t, out=False)
    t.add_argument("--steps", type=int, default=0, help="steps per arm for comparisons a-c (same batch)")
    t.add_argument("--minutes", type=float, default=0.0, help="training minutes per arm for comparison d")
    t.add_argument("--run-minutes", type=float, default=9.0, help="longest single training run (default 9)")
    t.add_argument("--session-minutes", type=float, default=0.0,
                   help="stop starting runs after this many minutes (0: until trained); run again to go on")
    t.add_argument("--configs", default=str(ROOT / "configs/stages/ablations"), help="arm config folder")
    t.add_argument("--base-model", help="model folder every arm starts from (default: the default model)")
    t.add_argument("--in-process", action="store_true", help="train in this process (tests, debugging)")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="settings for every training run")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="generate and judge every (prompt, seed) with each arm (resumable)")
    common(e)
    e.add_argument("--set", action="append", help="evaluation set (repeatable; default all three)")
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1000],
                   help="seed offsets; each prompt is generated once per offset (default 0 1000: 396 items)")
    e.add_argument("--limit", type=int, help="only the first K prompts of each set")
    e.add_argument("--arm", action="append", help="only these arms (their run names)")
    e.add_argument("--shard", help="I/N: this process takes items I, I+N, ... (run N processes at once)")
    e.add_argument("--save", choices=("mp4", "webp", "none"), default="mp4",
                   help="keep each video: H.264 mp4 (default), animated WebP at quality 90 (where PyAV is missing), or none")
    e.add_argument("--device", default="cpu")
    e.add_argument("--dtype", default="float32")
    e.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    e.add_argument("--interp-steps", type=int, help="interpolation steps (default: the model's)")
    e.add_argument("--no-interpolation", action="store_true", help="judge the 16-frame clips (tests)")
    e.add_argument("--threads", type=int, default=0, metavar="T",
                   help="torch CPU threads of this process (default: the processors divided by the shards' N)")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("report", help="pair the arms' judged clips: results.json and a table per comparison")
    common(r)
    r.add_argument("--label", default="", help="where and when it ran, e.g. 'NVIDIA H200, 2026-12-04'")
    r.set_defaults(func=cmd_report)

    g = sub.add_parser("plot", help="a PNG of the design choices' win rates with 95 %% intervals")
    g.add_argument("results", nargs="+", help="results.json files written by `report`")
    g.add_argument("--out", default="docs/ablations.png")
    g.add_argument("--label", default="", help="GPU and date, printed on the figure")
    g.set_defaults(func=cmd_plot)

    k = sub.add_parser("package", help="the evaluation videos of both arms as one folder to commit or share")
    common(k)
    k.add_argument("--dest", required=True, help="e.g. ablations/factorized_vs_direct")
    k.add_argument("--max-items", type=int, default=0, help="at most this many items (0: all)")
    k.add_argument("--crf", type=int, default=28, help="H.264 quality of re-encoded videos (lower is better)")
    k.set_defaults(func=cmd_package)
    return p


def main(argv=None) -> int:
    from emu_video.errors import UserError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"ablations: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
