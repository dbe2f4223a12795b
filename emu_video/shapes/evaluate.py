"""Score a text-to-video generator on the Shapes World evaluation sets with the judge."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from emu_video.errors import UserError
from emu_video.shapes.evalsets import load_eval_set
from emu_video.shapes.judge import judge

ATTRIBUTES = ("found", "color", "shape", "motion", "background")

GenerateFn = Callable[[str, int], tuple[np.ndarray, float]]


def summarize_reports(reports: list[dict]) -> dict:
    """Faithful rate, per-attribute accuracy and temporal scores over judge reports.

    found / color / shape / motion count every named object (two per two-object prompt); background
    counts the prompts that name one. temporal_consistency is the mean fraction of frames in which an
    object keeps its colour and shape; flicker_free the fraction of clips whose background is steady.
    """
    hits: dict[str, list[bool]] = {a: [] for a in ATTRIBUTES}
    consistency, flicker = [], []
    for r in reports:
        for o in r["objects"]:
            for a in ("found", "color", "shape", "motion"):
                if o[a]["ok"] is not None:
                    hits[a].append(bool(o[a]["ok"]))
            consistency.append(o["temporal"]["consistent_fraction"])
        if r["background"]["ok"] is not None:
            hits["background"].append(bool(r["background"]["ok"]))
        if r["temporal"].get("flicker_free") is not None:
            flicker.append(bool(r["temporal"]["flicker_free"]))

    def mean(xs):
        return round(float(np.mean(xs)), 4) if len(xs) else None

    out = {"num_clips": len(reports), "faithful": mean([r["faithful"] for r in reports])}
    for a in ATTRIBUTES:
        out[a] = mean(hits[a])
    out["temporal_consistency"] = mean(consistency)
    out["flicker_free"] = mean(flicker)
    return out


def _failed(report: dict) -> list[str]:
    bad = []
    for i, o in enumerate(report["objects"]):
        for a in ("found", "color", "shape", "motion"):
            if o[a]["ok"] is False:
                bad.append(f"{a}[{i}]" if len(report["objects"]) > 1 else a)
    if report["background"]["ok"] is False:
        bad.append("background")
    return bad


def evaluate_set(
    name: str,
    generate_fn: GenerateFn,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    seed_offset: int = 0,
    version: int | None = None,
) -> dict:
    """Generate every (prompt, seed) of an evaluation set and judge it.

    generate_fn(prompt, seed) -> (frames uint8 (T, H, W, 3), fps). limit: only the first K items;
    seed_offset: added to every seed. out_dir: also writes videos/NNN.mp4, reports.jsonl (one judge
    report per clip) and scores.json. Returns the scores (see summarize_reports) with set name, version
    and a short per-clip list (prompt, seed, faithful, failed attributes).
    """
    from tqdm.auto import tqdm

    eval_set = load_eval_set(name, version)
    items = list(eval_set.items)
    if limit is not None:
        if limit < 1:
            raise UserError(f"limit must be at least 1, got {limit}")
        items = items[:limit]
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        (out / "videos").mkdir(parents=True, exist_ok=True)
        report_fh = open(out / "reports.jsonl", "w", encoding="utf-8")
    reports, clips = [], []
    try:
        for k, item in enumerate(tqdm(items, desc=name, unit="clip", disable=not progress)):
            seed = item.seed + seed_offset
            frames, fps = generate_fn(item.prompt, seed)
            frames = np.asarray(frames)
            report = judge(frames, item.prompt, fps=fps)
            report["seed"] = seed
            reports.append(report)
            clips.append({"prompt": item.prompt, "seed": seed, "faithful": report["faithful"],
                          "failed": _failed(report)})
            if out is not None:
                from emu_video.io.video import write_video

                rel = f"videos/{k:03d}.mp4"
                write_video(out / rel, frames, fps)
                report["video"] = rel
                report_fh.write(json.dumps(report) + "\n")
                report_fh.flush()
    finally:
        if out is not None:
            report_fh.close()
    scores = {"set": eval_set.name, "version": eval_set.version, "seed_offset": seed_offset}
    scores.update(summarize_reports(reports))
    scores["clips"] = clips
    if out is not None:
        (out / "scores.json").write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    return scores


def evaluate_sets(names: Iterable[str], generate_fn: GenerateFn, out_dir=None, **kwargs) -> list[dict]:
    """evaluate_set for several sets; with out_dir, each set gets its own sub-folder."""
    results = []
    for name in names:
        sub = Path(out_dir) / name if out_dir is not None else None
        results.append(evaluate_set(name, generate_fn, out_dir=sub, **kwargs))
    return results


def _fmt(v) -> str:
    return "-" if v is None else f"{100.0 * v:.1f}"


def format_table(scores: dict | list[dict]) -> str:
    """A readable table, one row per set: clips, faithful and per-attribute accuracy (%), temporal scores."""
    rows = [scores] if isinstance(scores, dict) else list(scores)
    cols = ["set", "clips", "faithful", *ATTRIBUTES, "consistent", "no flicker"]
    keys = ["faithful", *ATTRIBUTES, "temporal_consistency", "flicker_free"]
    table = [cols]
    for s in rows:
        table.append([f"{s.get('set', '?')}", str(s.get("num_clips", ""))] + [_fmt(s.get(k)) for k in keys])
    widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
    lines = []
    for j, r in enumerate(table):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("(percent; found/color/shape/motion per named object, background per prompt naming one)")
    return "\n".join(lines)
