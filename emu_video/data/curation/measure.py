"""Measuring one manifest row (run in a worker process): decode it, find its scene cuts, split it if asked,
and score each resulting clip's motion and duplicate hashes. CLIP and aesthetic scores are added later in
the main process, from the first frames this returns. Any failure makes the row `unreadable`, never an error."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from emu_video.data.curation.duplicates import clip_hashes
from emu_video.data.curation.motion import DEFAULT_WINDOW, motion_summary
from emu_video.data.curation.scan import scan_clip
from emu_video.data.curation.scenes import (
    DEFAULT_THRESHOLD,
    detect_cuts,
    min_scene_frames,
    scene_ranges,
)

CUT_MODES = ("split", "drop", "off")


@dataclass
class MeasureSettings:
    cuts: str = "split"  # split: each scene becomes a clip | drop: clips with cuts are dropped | off: no detection
    cut_threshold: float = DEFAULT_THRESHOLD
    window: int = DEFAULT_WINDOW
    min_seconds: float = 4.0  # scenes shorter than this are not written when splitting (the length filter's)
    clips_dir: str = ""  # where split scenes are written

    def to_dict(self) -> dict:
        return asdict(self)


def _clip_record(path: str, scan, window: int, segment: list[int] | None) -> dict:
    return {
        "id": path if segment is None else f"{path}#{segment[0]}-{segment[1]}",
        "path": path,
        "segment": segment,
        "info": scan.info.to_dict(),
        "motion": motion_summary(scan.vector_series, scan.diff_series, window),
        "hashes": clip_hashes(scan.thumbnails),
    }


def _scene_path(source: str, clips_dir: str, k: int) -> Path:
    digest = hashlib.sha1(str(source).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return Path(clips_dir) / f"{Path(source).stem}-{digest}-scene{k:03d}.mp4"


def _split(source: str, scan, cuts: list[int], s: MeasureSettings) -> tuple[list[dict], dict]:
    from emu_video.data.curation.split import write_scenes

    info = scan.info
    ranges = scene_ranges(info.num_frames, cuts)
    long_enough = [(b - a) / info.fps >= s.min_seconds for a, b in ranges]
    paths = [_scene_path(source, s.clips_dir, k) if ok else None for k, ok in enumerate(long_enough)]
    write_scenes(source, ranges, paths)
    clips, first_frames = [], {}
    for (a, b), path in zip(ranges, paths):
        if path is None:  # too short to keep: recorded from the source's numbers, not written
            short = {**info.to_dict(), "num_frames": b - a, "duration": round((b - a) / info.fps, 4)}
            clips.append({"id": f"{source}#{a}-{b}", "path": None, "segment": [a, b], "info": short,
                          "motion": None, "hashes": []})
            continue
        part = scan_clip(str(path))
        record = _clip_record(str(path), part, s.window, [a, b])
        clips.append(record)
        first_frames[record["id"]] = part.first_frame
    return clips, first_frames


def measure_row(path: str, s: MeasureSettings) -> tuple[dict, dict]:
    """({"status", "error", "cuts", "clips"}, {clip id: first frame}) for the file at `path`."""
    if not Path(path).is_file():
        return {"status": "unreadable", "error": "file not found", "cuts": [], "clips": []}, {}
    try:
        scan = scan_clip(path)
        cuts = []
        if s.cuts != "off" and scan.info.num_frames > 1:
            cuts = detect_cuts(path, s.cut_threshold, min_scene_frames(scan.info.fps))
        if s.cuts == "split" and cuts:
            clips, first_frames = _split(path, scan, cuts, s)
        else:
            record = _clip_record(path, scan, s.window, None)
            clips, first_frames = [record], {record["id"]: scan.first_frame}
    except Exception as exc:  # av.error.*, truncated streams, scenedetect failures: the file is unusable
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        return {"status": "unreadable", "error": message, "cuts": [], "clips": []}, {}
    return {"status": "ok", "error": "", "cuts": cuts, "clips": clips}, first_frames
