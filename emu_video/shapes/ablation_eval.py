"""Judge the arms of an ablation on the same (prompt, seed) items and compare them.

Every arm generates each item of the evaluation sets (each prompt with one or more seed offsets), the judge
scores it, and one JSON line per clip goes to ARM/reports.jsonl (a run that stops goes on where it left
off; `shard=(i, n)` splits the items over processes). `compare_arms` then pairs the two arms' reports by
item: faithful rate and per-attribute accuracy with Wilson intervals, the quality proxies (the judge's frame
consistency and flicker, weight-free) with intervals, and paired win rates (ablation_stats).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from emu_video.errors import UserError
from emu_video.shapes.ablation_stats import bootstrap_mean, paired_win_rate, rate
from emu_video.shapes.evalsets import load_eval_set
from emu_video.shapes.evaluate import ATTRIBUTES
from emu_video.shapes.judge import judge

SETS = ("eval-seen", "eval-heldout", "eval-two")
GenerateFn = Callable[[str, int], tuple[np.ndarray, float]]
SaveFn = Callable[[Path, np.ndarray, float], None]


def eval_items(sets: Iterable[str] = SETS, seed_offsets: Sequence[int] = (0,), limit: int | None = None) -> list[dict]:
    """The (prompt, seed) items, each with the file name its video gets in every arm's folder."""
    items = []
    for name in sets:
        entries = list(load_eval_set(name).items)[:limit]
        for offset in seed_offsets:
            for k, item in enumerate(entries):
                seed = item.seed + int(offset)
                items.append({"file": f"{name}_{k:03d}_seed{seed}.mp4", "set": name, "index": k,
                              "prompt": item.prompt, "seed": seed})
    return items


def clip_scores(report: dict) -> dict:
    """Per-clip numbers the comparison uses: faithful, the share of the judge's attribute checks passed, and
    the quality proxies (frames in which every object keeps its colour and shape; background flicker)."""
    checks = [o[a]["ok"] for o in report["objects"] for a in ("found", "color", "shape", "motion")]
    checks.append(report["background"]["ok"])
    checks = [bool(c) for c in checks if c is not None]
    t = report["temporal"]
    return {"faithful": bool(report["faithful"]), "checks_passed": sum(checks) / len(checks) if checks else 0.0,
            "consistent_fraction": float(t.get("consistent_fraction") or 0.0),
            "flicker_free": bool(t.get("flicker_free")), "flicker": t.get("flicker")}


def read_reports(path: Path) -> dict[str, dict]:
    """file name -> report line, from a reports.jsonl (several shards: pass each, merge the dicts)."""
    out = {}
    if Path(path).is_file():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["file"]] = rec
    return out


def judge_arm(generate_fn: GenerateFn, items: Sequence[dict], out_dir: Path, shard: tuple[int, int] = (0, 1),
              save: SaveFn | None = None, progress: bool = True) -> Path:
    """Generate and judge this shard's items (item k belongs to shard k % n), skipping those already in its
    reports file; `save(path, frames, fps)` keeps each video under out_dir/videos/. Returns the reports file."""
    from tqdm.auto import tqdm

    i, n = shard
    if not 0 <= i < n:
        raise UserError(f"shard {i} of {n}: the index must be in 0..{n - 1}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("reports.jsonl" if n == 1 else f"reports-{i}-of-{n}.jsonl")
    done = read_reports(path)
    todo = [it for k, it in enumerate(items) if k % n == i and it["file"] not in done]
    with open(path, "a", encoding="utf-8") as fh:
        for item in tqdm(todo, desc=out_dir.name, unit="clip", disable=not progress):
            frames, fps = generate_fn(item["prompt"], item["seed"])
            frames = np.asarray(frames)
            report = judge(frames, item["prompt"], fps=fps)
            if save is not None:
                save(out_dir / "videos" / item["file"], frames, fps)
            fh.write(json.dumps({**item, "num_frames": int(frames.shape[0]), "size": int(frames.shape[1]), "fps": float(fps),
                                 **clip_scores(report), "report": report}) + "\n")
            fh.flush()
    return path


def arm_reports(out_dir: Path) -> dict[str, dict]:
    """Every report of an arm's folder (all shards)."""
    merged: dict[str, dict] = {}
    for path in sorted(Path(out_dir).glob("reports*.jsonl")):
        merged.update(read_reports(path))
    return merged


def _attribute_hits(reports: Iterable[dict]) -> dict[str, list[bool]]:
    hits: dict[str, list[bool]] = {a: [] for a in ATTRIBUTES}
    for r in reports:
        for o in r["objects"]:
            for a in ("found", "color", "shape", "motion"):
                if o[a]["ok"] is not None:
                    hits[a].append(bool(o[a]["ok"]))
        if r["background"]["ok"] is not None:
            hits["background"].append(bool(r["background"]["ok"]))
    return hits


def arm_summary(records: Sequence[dict]) -> dict:
    """One arm on a list of clips: faithful rate and per-attribute accuracy (Wilson), quality proxies."""
    hits = _attribute_hits(r["report"] for r in records)
    flicker = [r["flicker"] for r in records if r["flicker"] is not None]
    return {
        "clips": len(records),
        "faithful": rate([r["faithful"] for r in records]),
        "attributes": {a: rate(hits[a]) for a in ATTRIBUTES},
        "quality": {
            "consistent_fraction": bootstrap_mean([r["consistent_fraction"] for r in records]),
            "flicker_free": rate([r["flicker_free"] for r in records]),
            "flicker": bootstrap_mean(flicker),
        },
    }


def faithfulness_key(r: dict) -> tuple:
    """Which clip is more faithful: faithful first, then the share of attribute checks passed."""
    return (int(r["faithful"]), round(r["checks_passed"], 6))


def quality_key(r: dict) -> tuple:
    """Which clip looks better by the weight-free proxies: flicker-free first, then frame consistency."""
    return (int(r["flicker_free"]), round(r["consistent_fraction"], 6))


def compare_arms(choice: dict[str, dict], baseline: dict[str, dict], sets: Sequence[str] = SETS) -> dict:
    """Pair two arms' reports by file name; per set and over all sets: each arm's summary and the paired win
    rates of the first arm (the design choice) on faithfulness and on the quality proxies."""
    common = sorted(set(choice) & set(baseline))
    if not common:
        raise UserError("the two arms share no judged (prompt, seed) items: evaluate both on the same sets")
    groups = {name: [f for f in common if choice[f]["set"] == name] for name in sets}
    groups = {k: v for k, v in groups.items() if v}
    groups["all"] = common
    out = {}
    for name, files in groups.items():
        a, b = [choice[f] for f in files], [baseline[f] for f in files]
        out[name] = {
            "items": len(files),
            "choice": arm_summary(a), "baseline": arm_summary(b),
            "win_faithfulness": paired_win_rate([faithfulness_key(r) for r in a], [faithfulness_key(r) for r in b]),
            "win_quality": paired_win_rate([quality_key(r) for r in a], [quality_key(r) for r in b]),
        }
    return out
