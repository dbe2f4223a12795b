"""The README's first command on the CPU, phase by phase, for a list of settings: baseline defaults against
each speed lever and their combinations.

    python benchmarks/cpu_demo.py --rounds 3 --out benchmarks/results/cpu-demo.json
    python benchmarks/cpu_demo.py --settings defaults,trunc06,cache2 --rounds 2 --baseline-ref HEAD~5

Every run is a fresh `python` process that does what `emu-video generate PROMPT` does, through the same
functions (argument parsing, thread choice, `load_components`, `TextToVideoPipeline`, the video writer),
with a clock around each phase: import (the command's modules), load (the model folder: weights, text
encoder, autoencoder; includes any library imported lazily on the way), text -> image (the first frame),
image -> video (16 frames at 4 fps), interpolation (to 65 frames at 16 fps), decode (the autoencoder) and
write (the mp4). `wall` is the whole process from the parent's side, interpreter start-up included; `peak
RSS` is the child's own maximum resident memory.

Runs alternate between the settings round by round, in a rotated order, so a drift of the machine's speed
or of other work on it hits each setting alike; the 1-minute load average before each run is recorded.
`--baseline-ref REF` adds a setting `before` that runs the same child against the package as it was at git
revision REF (exported with `git archive` into a temporary folder): the previous release's start-up and
defaults, timed in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a yellow triangle rises on a black background"

# name -> extra `emu-video generate` arguments
SETTINGS: dict[str, list[str]] = {
    "defaults": [],
    "trunc06": ["--cfg-truncation", "0.6"],
    "trunc06text": ["--cfg-truncation", "0.6", "--cfg-truncation-keep", "text"],
    "cache2": ["--cache-interval", "2"],
    "cache3": ["--cache-interval", "3"],
    "int8": ["--quantize", "int8"],
    "bf16": ["--dtype", "bfloat16"],
    "interp3": ["--interp-steps", "3"],
    "trunc06+cache2": ["--cfg-truncation", "0.6", "--cache-interval", "2"],
    "trunc06+cache2+int8": ["--cfg-truncation", "0.6", "--cache-interval", "2", "--quantize", "int8"],
    "trunc06+cache2+bf16": ["--cfg-truncation", "0.6", "--cache-interval", "2", "--dtype", "bfloat16"],
}
DEFAULT_SETTINGS = "defaults,trunc06,cache2,int8,bf16,trunc06+cache2,trunc06+cache2+bf16"
PHASES = ("import", "load", "text_to_image", "image_to_video", "interpolation", "decode", "write")


# The child: one timed run of the demo command ----------------------------------------------------------------
def child(out: str, extra: list[str]) -> None:
    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    from emu_video.cli.main import build_parser

    from emu_video.cli import generate as g
    from emu_video.io.video import write_video  # noqa: F401  (the command imports it before loading)
    from emu_video.pipelines import TextToVideoPipeline

    args = build_parser().parse_args(["generate", PROMPT, "--out", out, "--quiet", *extra])
    phases["import"] = time.perf_counter() - t0

    kwargs = g._sampling(args)
    path = g._out_path(args, args.prompt)
    t = time.perf_counter()
    components = g.load_components(args)
    phases["load"] = time.perf_counter() - t

    pipe = TextToVideoPipeline(components)
    spent: dict[str, float] = {}

    def timed(fn, name):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
        return wrapper

    pipe.text_to_image = timed(pipe.text_to_image, "text_to_image")
    pipe.image_to_video = timed(pipe.image_to_video, "image_to_video")
    pipe.interpolate.decode = timed(pipe.interpolate.decode, "decode")
    pipe.decode = timed(pipe.decode, "decode")
    pipe.interpolate = timed(pipe.interpolate, "interpolation")
    video = pipe(args.prompt, interpolation_steps=args.interp_steps, image_guidance=args.image_guidance,
                 num_frames=args.frames, interpolate=not args.no_interpolate, **kwargs)
    spent["interpolation"] = spent.get("interpolation", 0.0) - spent.get("decode", 0.0) * bool(
        not args.no_interpolate)
    phases.update(spent)
    t = time.perf_counter()
    from emu_video.io.video import write_video

    write_video(path, video.frames, video.fps)
    phases["write"] = time.perf_counter() - t
    import resource

    import torch

    print("RESULT " + json.dumps({
        "phases": phases, "child_s": time.perf_counter() - t0, "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "frames": list(video.frames.shape),
    }), flush=True)


# The parent ------------------------------------------------------------------------------------------------
def export_revision(ref: str, dst: Path) -> Path:
    """The package at git revision `ref`, unpacked into `dst` (for PYTHONPATH)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "emu_video"], check=True,
                             capture_output=True).stdout
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    return dst


def one_run(extra: list[str], code_root: Path, out: Path, threads: int | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code_root))
    if threads:
        extra = [*extra, "--threads", str(threads)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(out), "--", *extra],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"run {extra} failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result.update(wall_s=wall, startup_s=wall - result["child_s"], load_before=load)
    return result


def summarize(runs: list[dict]) -> dict:
    med = statistics.median
    return {
        "median_wall_s": med(r["wall_s"] for r in runs),
        "min_wall_s": min(r["wall_s"] for r in runs),
        "median_phases_s": {p: med(r["phases"].get(p, 0.0) for r in runs) for p in PHASES},
        "median_startup_s": med(r["startup_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "runs": runs,
    }


def table(rows: dict[str, dict]) -> str:
    head = "| setting | wall (median) | " + " | ".join(PHASES) + " | peak RSS |"
    lines = [head, "|" + "---|" * (len(PHASES) + 3)]
    for name, s in rows.items():
        ph = s["median_phases_s"]
        lines.append(f"| {name} | {s['median_wall_s']:.1f} s | " + " | ".join(f"{ph[p]:.2f}" for p in PHASES)
                     + f" | {s['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[4:] if len(sys.argv) > 3 and sys.argv[3] == "--" else sys.argv[3:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="timed runs of each setting (default 3)")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS,
                    help="comma-separated names of: " + ", ".join(SETTINGS) + f" (default {DEFAULT_SETTINGS})")
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=ARGS",
                    help="one more setting: a name and its generate arguments, e.g. 'steps8=--steps 8'")
    ap.add_argument("--baseline-ref", default=None, metavar="REV",
                    help="also time the package as it was at this git revision (setting 'before', no flags)")
    ap.add_argument("--threads", type=int, default=None,
                    help="pass --threads N to every run (default: the command's own choice)")
    ap.add_argument("--out", type=Path, default=None, help="JSON results")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown")
    args = ap.parse_args()

    chosen = {name: SETTINGS[name] for name in args.settings.split(",") if name}
    for item in args.extra:
        name, _, flags = item.partition("=")
        chosen[name] = flags.split()
    unknown = [n for n in args.settings.split(",") if n and n not in SETTINGS]
    if unknown:
        ap.error(f"unknown settings {unknown}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roots = {name: ROOT for name in chosen}
        if args.baseline_ref:
            old = export_revision(args.baseline_ref, tmp / "before")
            chosen = {"before": [], **chosen}
            roots["before"] = old
        video = tmp / "v.mp4"
        one_run([], ROOT, video, args.threads)  # warm-up: file caches, compiled bytecode
        runs: dict[str, list[dict]] = {name: [] for name in chosen}
        names = list(chosen)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                res = one_run(chosen[name], roots[name], video, args.threads)
                runs[name].append(res)
                ph = res["phases"]
                print(f"round {r + 1} {name:24s} wall {res['wall_s']:5.1f} s  import {ph['import']:4.1f}  load "
                      f"{ph['load']:4.1f}  t2i {ph.get('text_to_image', 0):4.1f}  i2v {ph.get('image_to_video', 0):5.1f}"
                      f"  interp {ph.get('interpolation', 0):5.1f}  decode {ph.get('decode', 0):4.1f}  "
                      f"threads {res['threads']}  load avg {res['load_before']:.1f}  rss {res['peak_rss_mb']:.0f} MB",
                      flush=True)
    rows = {name: summarize(rs) for name, rs in runs.items()}
    text = table(rows)
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "what": "the README's first command (`emu-video generate PROMPT`) phase by phase, per setting",
            "prompt": PROMPT, "date": time.strftime("%Y-%m-%d"), "rounds": args.rounds,
            "processors": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
            "settings": chosen, "baseline_ref": args.baseline_ref, "results": rows}, indent=1))
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
