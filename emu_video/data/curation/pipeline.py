"""`curate`: measure every row of a manifest (in worker processes, resumably), score first frames with CLIP
and the aesthetic predictor, drop clips that fail the thresholds or duplicate a kept one, and write

* ``OUT/manifest.jsonl`` -- the kept clips, in the format training reads (``data.manifest=OUT/manifest.jsonl``),
* ``OUT/report.json``    -- every clip's scores and the reason it was kept or dropped; unreadable files,
* ``OUT/plots/*.png``    -- a histogram of each score with its threshold,
* ``OUT/clips/``         -- the scenes of split videos,
* ``OUT/scores.jsonl``   -- the resumable record of measured rows (a rerun skips them).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from emu_video.data.curation.duplicates import DEFAULT_MAX_DISTANCE, find_duplicates
from emu_video.data.curation.filters import Thresholds, drop_reasons
from emu_video.data.curation.journal import Journal, source_key
from emu_video.data.curation.measure import MeasureSettings, measure_row
from emu_video.data.curation.quality import QualityModels, score_first_frames
from emu_video.data.curation.report import plot_histograms, write_json
from emu_video.data.manifest import ManifestRow, read_manifest, write_manifest

QUALITY_BATCH = 32


@dataclass
class CurateResult:
    rows: int
    clips: int
    kept: int
    unreadable: list[dict]
    measured: int  # rows measured in this run (the rest came from an earlier run's record)
    manifest: Path
    report: Path
    plots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _measure_all(todo: list[tuple[str, ManifestRow]], settings: MeasureSettings, workers: int) -> Iterator:
    """(key, row, measurement, first frames) for each row, in the order they finish."""
    if workers <= 0:
        for key, row in todo:
            yield (key, row, *measure_row(row.path, settings))
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads or a CLIP model
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        queue, running = list(reversed(todo)), {}
        while queue or running:
            while queue and len(running) < 4 * workers:
                key, row = queue.pop()
                running[pool.submit(measure_row, row.path, settings)] = (key, row)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key, row = running.pop(future)
                yield (key, row, *future.result())


def measure_manifest(rows: list[ManifestRow], out: Path, settings: MeasureSettings, models: QualityModels,
                     quality_ids: dict, workers: int, progress: bool) -> tuple[list[dict], int]:
    """The journal entry of every row (measuring those not yet measured); and how many were measured now."""
    from tqdm import tqdm

    journal = Journal(out)
    key_settings = {**settings.to_dict(), **quality_ids}  # a change of any of these measures again
    if settings.cuts != "split":
        key_settings.pop("min_seconds")  # only decides which scenes are written
    keys = [source_key(r.path, r.caption, key_settings) for r in rows]
    todo, seen = [], set()
    for key, row in zip(keys, rows):
        if journal.get(key) is None and key not in seen and not row.problem:
            todo.append((key, row))
            seen.add(key)
    pending: list[tuple[dict, dict]] = []  # (entry, its first frames by clip id) waiting for CLIP / aesthetic
    pending_frames: dict = {}

    def flush() -> None:
        ids = [(entry, cid) for entry, frames in pending for cid in frames]
        frames = [pending_frames[cid] for _, cid in ids]
        captions = [entry["caption"] for entry, _ in ids]
        for start in range(0, len(ids), QUALITY_BATCH):
            scores = score_first_frames(models, frames[start:start + QUALITY_BATCH], captions[start:start + QUALITY_BATCH])
            for (entry, cid), score in zip(ids[start:start + QUALITY_BATCH], scores):
                next(c for c in entry["clips"] if c["id"] == cid).update(score)
        for entry, _ in pending:
            journal.add(entry)
        pending.clear()
        pending_frames.clear()

    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc="curate", unit="file", disable=not progress)
    for key, row, measured, first_frames in _measure_all(todo, settings, workers):
        entry = {"key": key, "source": row.path, "caption": row.caption, "metadata": row.metadata, **measured}
        for clip in entry["clips"]:
            clip.setdefault("clip_score", None)
            clip.setdefault("aesthetic", None)
        if models.active and first_frames:
            pending.append((entry, first_frames))
            pending_frames.update(first_frames)
            if len(pending_frames) >= QUALITY_BATCH:
                flush()
        else:
            journal.add(entry)
        bar.update(1)
    flush()
    bar.close()
    entries = []
    for key, row in zip(keys, rows):
        if row.problem:
            entries.append({"key": key, "source": row.path, "caption": row.caption, "metadata": row.metadata,
                            "status": "unreadable", "error": row.problem, "cuts": [], "clips": []})
        else:
            entries.append(journal.get(key))
    return entries, len(todo)


def _preference(clip: dict) -> tuple:
    info = clip["info"]
    return (-min(info["width"], info["height"]), -info["num_frames"])


def decide(entries: list[dict], thresholds: Thresholds, cut_mode: str, max_duplicate_distance: float) -> list[dict]:
    """Every clip of every readable entry with `kept` and `reasons` set (a new list of new dicts)."""
    clips = []
    for entry in entries:
        if entry["status"] != "ok":
            continue
        for clip in entry["clips"]:
            c = {**clip, "source": entry["source"], "caption": entry["caption"], "metadata": entry["metadata"]}
            c["reasons"] = drop_reasons(c, thresholds)
            if cut_mode == "drop" and entry["cuts"]:
                c["reasons"].append(f"scene cut at frame(s) {entry['cuts']}")
            clips.append(c)
    # by preference; sorting is stable, so manifest order breaks ties. Keys are positions: a file listed twice
    # (say, with two captions) is a duplicate of its first listing.
    passing = sorted((i for i, c in enumerate(clips) if not c["reasons"]), key=lambda i: _preference(clips[i]))
    duplicates = find_duplicates([(i, clips[i]["hashes"]) for i in passing], max_duplicate_distance)
    for i, c in enumerate(clips):
        if i in duplicates:
            c["reasons"].append(f"duplicate of {clips[duplicates[i]]['id']}")
        c["kept"] = not c["reasons"]
    return clips


def _manifest_row(clip: dict) -> ManifestRow:
    info = clip["info"]
    meta = {**clip["metadata"], "fps": info["fps"], "num_frames": info["num_frames"]}
    if clip["segment"] is not None:
        meta["source_video"] = clip["source"]
        meta["source_frames"] = clip["segment"]
    scores = {"motion": clip["motion"]["score"], "motion_method": clip["motion"]["method"]}
    scores.update({k: clip[k] for k in ("clip_score", "aesthetic") if clip.get(k) is not None})
    meta["curation"] = scores
    return ManifestRow(clip["path"], clip["caption"], meta)


def curate(manifest, out, thresholds: Thresholds | None = None, settings: MeasureSettings | None = None,
           models: QualityModels | None = None, quality_ids: dict | None = None, workers: int = 0,
           max_duplicate_distance: float = DEFAULT_MAX_DISTANCE, progress: bool = True) -> CurateResult:
    out = Path(out)
    thresholds = thresholds or Thresholds()
    settings = settings or MeasureSettings()
    models = models or QualityModels()
    if not settings.clips_dir:
        settings.clips_dir = str((out / "clips").resolve())
    settings.min_seconds = thresholds.min_seconds  # scenes shorter than the minimum are not written
    rows = read_manifest(manifest)
    out.mkdir(parents=True, exist_ok=True)
    entries, measured = measure_manifest(rows, out, settings, models, quality_ids or {}, workers, progress)
    clips = decide(entries, thresholds, settings.cuts, max_duplicate_distance)
    kept = [c for c in clips if c["kept"]]
    manifest_path = write_manifest(out / "manifest.jsonl", [_manifest_row(c) for c in kept])
    unreadable = [{"path": e["source"], "error": e["error"]} for e in entries if e["status"] != "ok"]
    plots = plot_histograms(clips, thresholds, out / "plots")
    report = write_json(out / "report.json", {
        "manifest": str(Path(manifest).resolve()),
        "counts": {"rows": len(rows), "clips": len(clips), "kept": len(kept), "dropped": len(clips) - len(kept),
                   "unreadable": len(unreadable)},
        "thresholds": thresholds.to_dict(),
        "settings": {**settings.to_dict(), "max_duplicate_distance": max_duplicate_distance, **(quality_ids or {})},
        "filters_off": models.notes,
        "unreadable": unreadable,
        "clips": [{k: v for k, v in c.items() if k != "metadata"} for c in clips],
    })
    return CurateResult(len(rows), len(clips), len(kept), unreadable, measured, manifest_path, report, plots,
                        list(models.notes))
