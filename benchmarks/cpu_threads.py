"""CPU thread counts for the demo on a shared machine: the README's first command timed with all processors'
worth of threads (torch's own default), with one thread, and with the default thread choice (the processors
other work leaves free, measured at every step), with and without other work running beside it.

    python benchmarks/cpu_threads.py --rounds 3 --out benchmarks/results/cpu-threads.json

The other work is a separate process started before each timed run and stopped after it: `spin` is one
single-threaded busy loop, `torch2` a 2-thread torch matrix-multiply loop (another PyTorch job). Runs
alternate between the settings round by round, so a drift of the machine's speed hits each setting alike.
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

PROMPT = "a yellow triangle rises on a black background"
LOADS = {
    "none": None,
    "spin": "while True: pass",
    "torch2": "import torch\ntorch.set_num_threads(2)\na = torch.randn(768, 768)\nwhile True: a @ a",
}


def settings(cpus: int) -> dict[str, list[str]]:
    return {f"{cpus} threads (torch default)": ["--threads", str(cpus)], "1 thread": ["--threads", "1"],
            "default choice": []}


def time_run(extra: list[str], out: Path, steps: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cmd = [sys.executable, "-m", "emu_video.cli.main", "generate", PROMPT, "--out", str(out), "--quiet", *steps, *extra]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="timed runs of each setting under each load (default 3)")
    ap.add_argument("--loads", default="none,spin,torch2", help="comma-separated: " + ", ".join(LOADS))
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = ap.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    steps = ["--steps", str(args.steps)] if args.steps else []
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "v.mp4"
        time_run([], video, steps)  # warm-up: file caches, compiled bytecode
        for load in args.loads.split(","):
            times: dict[str, list[float]] = {name: [] for name in settings(cpus)}
            for _ in range(args.rounds):
                for name, extra in settings(cpus).items():
                    other = subprocess.Popen([sys.executable, "-c", LOADS[load]]) if LOADS[load] else None
                    try:
                        time.sleep(1.0 if other else 0.0)
                        times[name].append(time_run(extra, video, steps))
                    finally:
                        if other:
                            other.kill()
                            other.wait()
                    print(f"{load:7s} {name:28s} {times[name][-1]:6.1f} s", flush=True)
            rows[load] = {name: {"median_s": statistics.median(t), "runs_s": t} for name, t in times.items()}
    print(f"\nmedian wall time of `emu-video generate` ({cpus} processors, {args.rounds} runs each)")
    names = list(settings(cpus))
    print(f"{'other work':10s}" + "".join(f"{n:>30s}" for n in names))
    for load, row in rows.items():
        print(f"{load:10s}" + "".join(f"{row[n]['median_s']:>29.1f}s" for n in names))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"processors": cpus, "machine": platform.processor() or platform.machine(),
                                        "date": time.strftime("%Y-%m-%d"), "rounds": args.rounds,
                                        "prompt": PROMPT, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
