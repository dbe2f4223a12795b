"""Check the judge against ground truth: render random scenes, judge them against their own captions."""

from __future__ import annotations

import collections
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from emu_video.shapes import palette as P
from emu_video.shapes.grammar import caption
from emu_video.shapes.judge import judge
from emu_video.shapes.render import render
from emu_video.shapes.scene import Scene, allowed_backgrounds, random_scene

VALIDATED = ("found", "color", "shape", "motion", "background", "faithful")


def _perturbed(scene: Scene, rng: np.random.Generator) -> tuple[str, Scene]:
    """The scene with one attribute of one object (or the background) changed to another allowed value."""
    kind = ("color", "shape", "motion", "background")[int(rng.integers(4))]
    if kind == "background":
        options = [b for b in allowed_backgrounds(o.color for o in scene.objects) if b != scene.background]
        if options:
            return kind, replace(scene, background=options[int(rng.integers(len(options)))])
        kind = "shape"
    k = int(rng.integers(len(scene.objects)))
    obj = scene.objects[k]
    if kind == "color":
        used = {o.color for o in scene.objects}
        options = [c for c in P.COLOR_NAMES if c not in used and P.allowed_on(c, scene.background)]
    else:
        options = [v for v in (P.SHAPES if kind == "shape" else P.MOTIONS) if v != getattr(obj, kind)]
    objects = list(scene.objects)
    objects[k] = replace(obj, **{kind: options[int(rng.integers(len(options)))]})
    return kind, replace(scene, objects=tuple(objects))


def validate_judge(
    num_clips: int = 1000,
    seed: int = 0,
    through_video: bool = False,
    progress: bool = False,
    negatives: bool = True,
) -> dict:
    """Render `num_clips` random clips (half one object, half two; motions uniform), judge each against
    its canonical caption and count agreement per attribute.

    through_video: write each clip as H.264 mp4 and judge the decoded frames (as generated videos are).
    negatives: also judge each clip against its caption with one attribute changed (another colour,
    shape, motion or background) and count how often the judge rejects it.
    Returns {"clips", "agreement": {attribute: fraction}, "per_motion": {motion: fraction of objects
    whose motion agreed}, "confusion": {attribute: {"expected -> detected": count}} for disagreements,
    "rejection": {changed attribute: fraction of altered captions judged unfaithful},
    "judge_seconds_per_clip", "render_seconds_per_clip"}.
    """
    from tqdm.auto import tqdm

    from emu_video.io.video import read_video, write_video

    rng = np.random.default_rng(seed)
    hits: dict[str, list[bool]] = {a: [] for a in VALIDATED}
    per_motion: dict[str, list[bool]] = {m: [] for m in P.MOTIONS}
    confusion: dict[str, collections.Counter] = {a: collections.Counter() for a in VALIDATED}
    rejected: dict[str, list[bool]] = {a: [] for a in ("color", "shape", "motion", "background")}
    accepted_wrong: collections.Counter = collections.Counter()
    neg_rng = np.random.default_rng([seed, 1])
    t_render = t_judge = 0.0
    tmp = tempfile.TemporaryDirectory() if through_video else None
    try:
        for i in tqdm(range(num_clips), desc="validating judge", unit="clip", disable=not progress):
            scene = random_scene(rng, num_objects=1 + i % 2)
            t0 = time.perf_counter()
            frames = render(scene)
            t_render += time.perf_counter() - t0
            fps = P.FPS
            if tmp is not None:
                path = Path(tmp.name) / "clip.mp4"
                write_video(path, frames, P.FPS)
                video = read_video(path)
                frames, fps = video.frames, video.fps
            t0 = time.perf_counter()
            rep = judge(frames, caption(scene), fps=fps)
            t_judge += time.perf_counter() - t0
            for obj, o in zip(scene.objects, rep["objects"]):
                for a in ("found", "color", "shape", "motion"):
                    ok = bool(o[a]["ok"])
                    hits[a].append(ok)
                    if not ok:
                        got = o[a].get("detected") if a != "found" else "missing"
                        confusion[a][f"{o[a].get('expected', obj.color)} -> {got}"] += 1
                per_motion[obj.motion].append(bool(o["motion"]["ok"]))
            ok = bool(rep["background"]["ok"])
            hits["background"].append(ok)
            if not ok:
                confusion["background"][f"{scene.background} -> {rep['background']['detected']}"] += 1
            hits["faithful"].append(bool(rep["faithful"]))
            if not rep["faithful"]:
                confusion["faithful"][caption(scene)] += 1
            if negatives:
                kind, altered = _perturbed(scene, neg_rng)
                bad = judge(frames, caption(altered), fps=fps)
                rejected[kind].append(not bad["faithful"])
                if bad["faithful"]:
                    accepted_wrong[f"{caption(scene)} judged as {caption(altered)}"] += 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {
        "clips": num_clips,
        "through_video": through_video,
        "agreement": {a: round(float(np.mean(v)), 5) for a, v in hits.items()},
        "per_motion": {m: round(float(np.mean(v)), 5) for m, v in per_motion.items() if v},
        "confusion": {a: dict(c.most_common()) for a, c in confusion.items() if c},
        "rejection": {a: round(float(np.mean(v)), 5) for a, v in rejected.items() if v},
        "accepted_altered": dict(accepted_wrong.most_common()),
        "render_seconds_per_clip": round(t_render / max(1, num_clips), 4),
        "judge_seconds_per_clip": round(t_judge / max(1, num_clips), 4),  # the true caption's judging only
    }


def format_validation(result: dict) -> str:
    lines = [
        f"judge agreement on {result['clips']} rendered clips"
        + (" (through H.264 mp4)" if result["through_video"] else " (raw frames)"),
    ]
    for a, v in result["agreement"].items():
        lines.append(f"  {a:<11} {100.0 * v:7.2f} %")
    lines.append("  motion by kind: " + ", ".join(f"{m} {100.0 * v:.1f}%" for m, v in result["per_motion"].items()))
    if result["confusion"]:
        lines.append("  disagreements (expected -> detected: count):")
        for a, c in result["confusion"].items():
            for k, n in c.items():
                lines.append(f"    {a}: {k}: {n}")
    else:
        lines.append("  no disagreements")
    if result.get("rejection"):
        lines.append(
            "  altered captions rejected (one attribute changed): "
            + ", ".join(f"{a} {100.0 * v:.1f}%" for a, v in result["rejection"].items())
        )
        for k, n in result.get("accepted_altered", {}).items():
            lines.append(f"    accepted: {k}: {n}")
    lines.append(
        f"  render {1000 * result['render_seconds_per_clip']:.1f} ms/clip, "
        f"judge {1000 * result['judge_seconds_per_clip']:.1f} ms/clip"
    )
    return "\n".join(lines)
