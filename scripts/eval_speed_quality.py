"""Quality against time for the speed levers: every candidate setting generates the Shapes World evaluation
sets with the default model (text -> first frame -> video -> interpolation, what `emu-video generate` does),
the judge scores each clip, and a Markdown table sets the faithful rates against the seconds per video.

    python scripts/eval_speed_quality.py --device cuda --limit 40 --out speed-quality.json --markdown speed-quality.md
    python scripts/eval_speed_quality.py --limit 4 --candidates defaults,trunc06 --out /tmp/q.json   # a CPU smoke run
    python scripts/eval_speed_quality.py --out speed-quality.json --report-only                      # the table again

A candidate is a name and pipeline settings: `--candidate NAME=key=value,key=value` adds one (keys: steps,
interp_steps, sampler, cfg_truncation, cfg_truncation_keep, cache_interval, image_guidance, w_img, w_txt, dtype,
quantize); `--candidates a,b` picks from the built-in list (see CANDIDATES). `defaults` (the model folder's
own settings) is the reference every other row is compared with: a lever keeps quality when each set's
faithful rate is within `--tolerance` points (2.5) of the reference's, or better.

The JSON is written after every (candidate, set) and read back at start: a run that is cut off resumes where
it stopped (`--fresh` starts over). int8 quantisation runs on the CPU only: such candidates run there even
with `--device cuda` (their seconds per video are then CPU seconds; the table says so).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = ("eval-seen", "eval-heldout", "eval-two")

# name -> pipeline settings; "defaults" is the reference (the model folder's own settings)
CANDIDATES: dict[str, dict] = {
    "defaults": {},
    "trunc06": {"cfg_truncation": 0.6},
    "trunc06text": {"cfg_truncation": 0.6, "cfg_truncation_keep": "text"},
    "trunc08": {"cfg_truncation": 0.8},
    "cache2": {"cache_interval": 2},
    "cache3": {"cache_interval": 3},
    "trunc06+cache2": {"cfg_truncation": 0.6, "cache_interval": 2},
    "interp3": {"interp_steps": 3},
    "steps8": {"steps": 8},
    "dpmpp-2m:10": {"sampler": "dpmpp-2m"},
    "bf16": {"dtype": "bfloat16"},
    "trunc06+cache2+bf16": {"cfg_truncation": 0.6, "cache_interval": 2, "dtype": "bfloat16"},
    "int8": {"quantize": "int8"},
    "trunc06+cache2+int8": {"cfg_truncation": 0.6, "cache_interval": 2, "quantize": "int8"},
}
DEFAULT_CANDIDATES = "defaults,trunc06,trunc06text,cache2,cache3,trunc06+cache2,interp3,bf16,trunc06+cache2+bf16"
CALL_KEYS = {"steps": "num_inference_steps", "interp_steps": "interpolation_steps", "sampler": "sampler",
             "cfg_truncation": "cfg_truncation", "cfg_truncation_keep": "cfg_truncation_keep",
             "cache_interval": "cache_interval", "image_guidance": "image_guidance", "w_img": "w_img", "w_txt": "w_txt"}
LOAD_KEYS = ("dtype", "quantize")


def parse_candidate(text: str) -> tuple[str, dict]:
    """'NAME=key=value,key=value' -> (NAME, settings), values as int, float or string."""
    name, _, rest = text.partition("=")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in CALL_KEYS and key not in LOAD_KEYS:
            raise SystemExit(f"unknown setting {key!r} in candidate {name!r}; known: {', '.join([*CALL_KEYS, *LOAD_KEYS])}")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        settings[key] = value
    return name, settings


class Loader:
    """Loaded pipelines, one per (device, dtype, quantisation)."""

    def __init__(self, model: str | None, device: str, threads: int | None):
        self.model, self.device, self.threads = model, device, threads
        self.cache: dict[tuple, object] = {}

    def device_for(self, settings: dict) -> str:
        return "cpu" if settings.get("quantize", "none") != "none" else self.device

    def get(self, settings: dict):
        from emu_video.pipelines import TextToVideoPipeline

        device = self.device_for(settings)
        key = (device, settings.get("dtype", "float32"), settings.get("quantize", "none"))
        if key not in self.cache:
            import torch

            if device == "cpu" and self.threads:
                torch.set_num_threads(self.threads)
            pipe = TextToVideoPipeline.from_pretrained(self.model, device=device, dtype=key[1])
            pipe.components.quantize(key[2])
            self.cache[key] = pipe
        return self.cache[key]


def run_set(pipe, set_name: str, settings: dict, limit: int | None, sync) -> dict:
    import numpy as np

    from emu_video.shapes.evaluate import evaluate_set

    call = {CALL_KEYS[k]: v for k, v in settings.items() if k in CALL_KEYS}
    seconds: list[float] = []

    def generate(prompt: str, seed: int):
        sync()
        start = time.perf_counter()
        out = pipe(prompt, seed=seed, progress=False, **call)
        sync()
        seconds.append(time.perf_counter() - start)
        return np.asarray(out.frames), float(out.fps)

    scores = evaluate_set(set_name, generate, progress=False, limit=limit)
    scores["seconds_per_video"] = sum(seconds[1:]) / max(1, len(seconds) - 1) if len(seconds) > 1 else seconds[0]
    scores["first_video_s"] = seconds[0]  # includes one-off costs (compilation on a GPU)
    return scores


def markdown(results: dict, reference: str, tolerance: float) -> str:
    ref = results.get(reference, {}).get("sets", {})
    lines = ["| setting | device | " + " | ".join(f"{s} faithful" for s in SETS)
             + " | worst change vs " + reference + " | s / video | keeps quality |",
             "|" + "---|" * (len(SETS) + 5)]
    for name, entry in results.items():
        sets = entry.get("sets", {})
        cells, worst = [], None
        for s in SETS:
            if s not in sets:
                cells.append("-")
                continue
            f = 100 * sets[s]["faithful"]
            cells.append(f"{f:.1f} %")
            if s in ref:
                d = f - 100 * ref[s]["faithful"]
                worst = d if worst is None else min(worst, d)
        secs = [sets[s]["seconds_per_video"] for s in SETS if s in sets]
        sec = f"{sum(secs) / len(secs):.2f}" if secs else "-"
        keeps = "-" if worst is None or name == reference else ("yes" if worst >= -tolerance else "no")
        change = "-" if worst is None or name == reference else f"{worst:+.1f} pts"
        lines.append(f"| {name} | {entry.get('device', '-')} | " + " | ".join(cells) + f" | {change} | {sec} | {keeps} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model folder (default: the shipped default model)")
    ap.add_argument("--device", default="cpu", help="torch device for the candidates (default cpu)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for candidates that run on the CPU")
    ap.add_argument("--limit", type=int, default=40, help="first K prompts of each set (default 40)")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated (default {','.join(SETS)})")
    ap.add_argument("--candidates", default=DEFAULT_CANDIDATES,
                    help=f"built-in candidates to run, comma-separated (default {DEFAULT_CANDIDATES}); all: "
                         + ", ".join(CANDIDATES))
    ap.add_argument("--candidate", action="append", default=[], metavar="NAME=key=value,...",
                    help="one more candidate with its own settings")
    ap.add_argument("--reference", default="defaults", help="the candidate the others are compared with")
    ap.add_argument("--tolerance", type=float, default=2.5, help="points of faithful rate a lever may lose")
    ap.add_argument("--out", type=Path, required=True, help="JSON results (resumed when it exists)")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing --out and start over")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="start no new (candidate, set) after this many seconds; run again to resume")
    ap.add_argument("--report-only", action="store_true",
                    help="print (and write) the table of what --out holds, generating nothing")
    args = ap.parse_args()
    if args.report_only:
        data = json.loads(args.out.read_text())
        table = markdown(data["results"], data.get("reference", args.reference), args.tolerance)
        print(table)
        if args.markdown:
            args.markdown.write_text(table + "\n")
        return 0

    chosen = {}
    for name in filter(None, args.candidates.split(",")):
        if name not in CANDIDATES:
            ap.error(f"unknown candidate {name!r}; choose from {', '.join(CANDIDATES)} or add one with --candidate")
        chosen[name] = CANDIDATES[name]
    chosen.update(parse_candidate(c) for c in args.candidate)
    sets = [s for s in args.sets.split(",") if s]
    data = json.loads(args.out.read_text()) if args.out.exists() and not args.fresh else {}
    data.setdefault("results", {})
    data.update({"what": "Shapes World judge scores and seconds per video per speed setting (text -> 65-frame video)",
                 "limit": args.limit, "device": args.device, "reference": args.reference,
                 "tolerance_points": args.tolerance})
    import torch

    loader = Loader(args.model, args.device, args.threads)
    started = time.perf_counter()
    for name, settings in chosen.items():
        entry = data["results"].setdefault(name, {"settings": settings, "sets": {}})
        if entry.get("settings") != settings:  # settings changed since the saved run: start this one over
            entry.update(settings=settings, sets={})
        device = loader.device_for(settings)
        entry["device"] = device
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        for set_name in sets:
            if set_name in entry["sets"] and entry["sets"][set_name].get("num_clips") == args.limit:
                continue
            if args.budget_s is not None and time.perf_counter() - started > args.budget_s:
                print(f"time budget spent: {name} {set_name} and later ones left for the next run", flush=True)
                break
            pipe = loader.get(settings)
            t0 = time.perf_counter()
            scores = run_set(pipe, set_name, settings, args.limit, sync)
            scores.pop("clips", None)
            entry["sets"][set_name] = scores
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(data, indent=1))
            print(f"{name:22s} {set_name:13s} faithful {100 * scores['faithful']:5.1f} %  "
                  f"{scores['seconds_per_video']:.2f} s/video ({device}, {time.perf_counter() - t0:.0f} s)", flush=True)
    table = markdown({n: data["results"][n] for n in chosen}, args.reference, args.tolerance)
    print("\n" + table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
