"""Judging long videos (chained extensions) and keyframe videos with the Shapes World judge.

Long videos: an evaluation prompt's motions alternate from segment to segment (left, right, left, ...; grow,
shrink, ...; `OPPOSITE`), so every seam asks for a change of motion and the objects stay on the canvas. Each
segment's own frames are judged against its prompt:

* object kept: every object found in its prompt's colour and shape (the identity of segment 1 held);
* colour drift: RGB distance of each object's mean colour from its mean colour in segment 1;
* motion: each object moves as its segment's prompt says;
* seams: the weight-free flicker (temporal second difference, emu_video/evaluation/weightfree.py) in a
  one-second window around every seam, next to the same measure around the middle of every segment.

Keyframes: the first and the last frame of a rendered clip (16 frames at 4 fps) are given; the video between
must carry the object from the first position to the last (`travel_check`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from emu_video.evaluation.weightfree import flicker
from emu_video.shapes import palette as P
from emu_video.shapes.continuation import OPPOSITE
from emu_video.shapes.grammar import ParsedPrompt, caption, parse_prompt
from emu_video.shapes.judge import classify_pixels, judge
from emu_video.shapes.regions import largest_regions

DIRECTIONAL = ("left", "right", "up", "down")
TRAVEL_TOLERANCE_PX = 8.0  # keyframes: the generated ends lie this close to the given positions (128 px units)


# Prompts -----------------------------------------------------------------------------------------------
def segment_prompts(prompt: str, segments: int) -> list[str]:
    """One prompt per segment: `prompt`'s motions in odd segments, their opposites in even ones."""
    parsed = parse_prompt(prompt)
    out = []
    for k in range(segments):
        objects = tuple(replace(o, motion=(o.motion or "still") if k % 2 == 0 else OPPOSITE[o.motion or "still"])
                        for o in parsed.objects)
        out.append(caption(ParsedPrompt(objects, parsed.background)))
    return out


# Long videos -------------------------------------------------------------------------------------------
def _seam_windows(bounds: Sequence[tuple[int, int]], fps: float, total: int) -> tuple[list[float], list[float]]:
    """Flicker around each seam and around the middle of each segment (windows of one second)."""
    half = max(2, round(fps / 2))
    seams, inner = [], []
    for k, (a, b) in enumerate(bounds):
        if k > 0 and a - half >= 0 and a + half <= total:
            seams.append((a - half, a + half))
        mid = (a + b) // 2
        if mid - half >= 0 and mid + half <= total:
            inner.append((mid - half, mid + half))
    return seams, inner


def judge_long_video(frames: np.ndarray, fps: float, segments: Sequence[dict]) -> dict:
    """Per-segment judgement of a long video: `segments` as `LongVideoPipeline` reports them (prompt, start,
    end in output frames)."""
    rows = []
    first_rgb: list | None = None
    for k, seg in enumerate(segments):
        clip = frames[seg["start"] : seg["end"]]
        rep = judge(clip, seg["prompt"], fps=fps)
        rgb = [o["color"].get("mean_rgb") for o in rep["objects"]]
        if k == 0:
            first_rgb = rgb
        drift = [float(np.linalg.norm(np.subtract(a, b))) if a is not None and b is not None else None
                 for a, b in zip(rgb, first_rgb)]
        kept = all(o["found"]["ok"] and o["color"]["ok"] and o["shape"]["ok"] for o in rep["objects"])
        motions = [o["motion"]["ok"] for o in rep["objects"] if o["motion"]["ok"] is not None]
        rows.append({"prompt": seg["prompt"], "frames": len(clip), "kept": bool(kept),
                     "motion_ok": [bool(m) for m in motions],
                     "detected": [(o["color"]["detected"], o["shape"]["detected"], o["motion"]["detected"])
                                  for o in rep["objects"]],
                     "color_drift": drift, "faithful": bool(rep["faithful"])})
    seam_w, inner_w = _seam_windows([(s["start"], s["end"]) for s in segments], fps, len(frames))
    seam = [flicker(frames[a:b]) for a, b in seam_w]
    inner = [flicker(frames[a:b]) for a, b in inner_w]
    drifts = [d for d in rows[-1]["color_drift"] if d is not None]
    missing = any(d is None for d in rows[-1]["color_drift"])
    return {
        "per_segment": rows,
        "kept_all": all(r["kept"] for r in rows),
        "kept_share": float(np.mean([r["kept"] for r in rows])),
        "motion_share": float(np.mean([m for r in rows for m in r["motion_ok"]])) if any(
            r["motion_ok"] for r in rows) else None,
        "last_color_drift": None if missing or not drifts else float(np.mean(drifts)),
        "seam_flicker": float(np.mean(seam)) if seam else None,
        "inner_flicker": float(np.mean(inner)) if inner else None,
    }


# Keyframes ---------------------------------------------------------------------------------------------
def object_centres(frames: np.ndarray, color: str) -> np.ndarray:
    """(T, 2) centroid (x, y) in 128-px units of the largest region of `color` per frame (nan where none)."""
    labels = classify_pixels(frames)
    regions = largest_regions(labels == P.PALETTE_NAMES.index(color))
    scale = frames.shape[2] / P.SIZE
    c = np.stack([regions.cx, regions.cy], axis=1) / scale
    c[regions.area < 10 * scale * scale] = np.nan
    return c


def travel_check(frames: np.ndarray, prompt: str, start: np.ndarray, end: np.ndarray, fps: float) -> dict:
    """Whether a keyframes video carries the (single) object of `prompt` from `start` to `end` (x, y in
    128-px units): the judge finds it in its colour and shape moving as the prompt says, its first and last
    generated positions lie within 8 px of the given ones, and halfway through it is between 25 % and 75 %
    of the way."""
    rep = judge(frames, prompt, fps=fps)
    obj = rep["objects"][0]
    c = object_centres(frames, obj["color"]["expected"])
    path = np.asarray(end, float) - np.asarray(start, float)
    mid = c[len(c) // 2]
    progress = float(np.dot(mid - start, path) / np.dot(path, path)) if np.isfinite(mid).all() else None
    ends_ok = bool(np.isfinite(c[[0, -1]]).all() and np.linalg.norm(c[0] - start) <= TRAVEL_TOLERANCE_PX
                   and np.linalg.norm(c[-1] - end) <= TRAVEL_TOLERANCE_PX)
    travels = bool(ends_ok and progress is not None and 0.25 <= progress <= 0.75)
    return {"kept": bool(obj["found"]["ok"] and obj["color"]["ok"] and obj["shape"]["ok"]),
            "motion_ok": bool(obj["motion"]["ok"]), "ends_ok": ends_ok, "mid_progress": progress,
            "travels": travels, "ok": bool(travels and obj["motion"]["ok"] and obj["color"]["ok"])}


# Summaries ---------------------------------------------------------------------------------------------
def _mean(xs: Iterable) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def summary_table(rows: Sequence[dict]) -> str:
    """Markdown: one line per (model, weights, anchor, segments) of long-video rows and per (model, weights) of
    keyframes rows."""
    out = []
    long_rows = [r for r in rows if r.get("check") == "long"]
    if long_rows:
        out += [("| model | extension weights | anchor | segments | frames | prompts | object kept (% segments) "
                 "| kept to the end (% videos) | motion (% segment-objects) | colour drift, last segment (RGB) "
                 "| seam flicker | inner flicker |"),
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        groups: dict[tuple, list[dict]] = {}
        for r in long_rows:
            groups.setdefault((r["model"], r["weights"], r["anchor"], r["segments"]), []).append(r)
        for (model, weights, anchor, n), rs in sorted(groups.items()):
            out.append(f"| {model} | {weights} | {anchor} | {n} | {int(np.median([r['frames'] for r in rs]))} | {len(rs)} | "
                       f"{_pct(_mean(r['kept_share'] for r in rs))} | {_pct(_mean(r['kept_all'] for r in rs))} | "
                       f"{_pct(_mean(r['motion_share'] for r in rs))} | "
                       f"{_num(_mean(r['last_color_drift'] for r in rs))} | "
                       f"{_num(_mean(r['seam_flicker'] for r in rs))} | {_num(_mean(r['inner_flicker'] for r in rs))} |")
    key_rows = [r for r in rows if r.get("check") == "keyframes"]
    if key_rows:
        out += ["", ("| model | keyframes weights | prompts | object kept (%) | motion (%) "
                     "| ends at the given frames (%) | travels first -> last (%) |"), "|---|---|---|---|---|---|---|"]
        groups = {}
        for r in key_rows:
            groups.setdefault((r["model"], r["weights"]), []).append(r)
        for (model, weights), rs in sorted(groups.items()):
            out.append(f"| {model} | {weights} | {len(rs)} | {_pct(_mean(r['kept'] for r in rs))} | "
                       f"{_pct(_mean(r['motion_ok'] for r in rs))} | {_pct(_mean(r['ends_ok'] for r in rs))} | "
                       f"{_pct(_mean(r['travels'] for r in rs))} |")
    return "\n".join(out) + "\n"
