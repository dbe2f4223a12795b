"""Manifests: one row per media file (video or image) with its caption and optional metadata.

Two formats, chosen by the file suffix:

* JSONL (``.jsonl``): one JSON object per line, ``{"path": "videos/0001.mp4", "caption": "...", ...}``;
  every other key is kept as metadata (Shapes World writes ``fps``, ``num_frames`` and ``scene``).
* CSV (``.csv``): a header with at least the ``path`` and ``caption`` columns; other columns are metadata.

Relative paths are relative to the manifest's own folder, so a dataset folder can be moved as a whole.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emu_video.errors import UserError
from emu_video.io.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

MANIFEST_SUFFIXES = (".jsonl", ".csv")


@dataclass
class ManifestRow:
    path: str  # absolute path of the media file
    caption: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return Path(self.path).suffix.lower() in VIDEO_SUFFIXES


def _row(raw: dict[str, Any], root: Path, where: str) -> ManifestRow:
    if "path" not in raw or not str(raw["path"]).strip():
        raise UserError(f"{where}: no 'path'")
    if "caption" not in raw or raw["caption"] is None:
        raise UserError(f"{where}: no 'caption' (use an empty string for an uncaptioned file)")
    path = Path(str(raw["path"]).strip())
    meta = {k: v for k, v in raw.items() if k not in ("path", "caption")}
    return ManifestRow(str(path if path.is_absolute() else root / path), str(raw["caption"]), meta)


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """All rows of a JSONL or CSV manifest, paths made absolute (files are not opened here)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    suffix = path.suffix.lower()
    root = path.resolve().parent
    rows: list[ManifestRow] = []
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
                if not isinstance(raw, dict):
                    raise UserError(f"{path}:{n}: each line must be a JSON object")
                rows.append(_row(raw, root, f"{path}:{n}"))
    elif suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"path", "caption"} - set(reader.fieldnames or ())
            if missing:
                raise UserError(f"{path}: the CSV header needs the columns path and caption "
                                f"(missing {sorted(missing)})")
            for n, raw in enumerate(reader, 2):
                rows.append(_row(raw, root, f"{path}:{n}"))
    else:
        raise UserError(f"{path}: a manifest must be .jsonl or .csv")
    if not rows:
        raise UserError(f"{path}: the manifest has no rows")
    return rows


def read_manifests(paths: Iterable[str | os.PathLike]) -> list[ManifestRow]:
    rows: list[ManifestRow] = []
    for p in paths:
        rows.extend(read_manifest(p))
    return rows


def write_manifest(path: str | os.PathLike, rows: Iterable[ManifestRow]) -> Path:
    """Write a JSONL manifest with paths relative to its folder where possible (atomic)."""
    path = Path(path)
    if path.suffix.lower() != ".jsonl":
        raise UserError(f"manifests are written as .jsonl, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.resolve().parent
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            p = Path(row.path).resolve()
            try:
                rel = p.relative_to(root).as_posix()
            except ValueError:
                rel = str(p)
            fh.write(json.dumps({"path": rel, "caption": row.caption, **row.metadata}) + "\n")
    os.replace(tmp, path)
    return path


def caption_for(media: Path, source: str) -> str:
    """A caption for a media file: its sidecar `.txt`, its file name, or nothing."""
    if source == "sidecar":
        side = media.with_suffix(".txt")
        return side.read_text(encoding="utf-8").strip() if side.exists() else ""
    if source == "filename":
        return media.stem.replace("_", " ").replace("-", " ").strip()
    if source == "none":
        return ""
    raise UserError(f"unknown caption source {source!r}; choose sidecar, filename or none")


def scan_folder(folder: str | os.PathLike, kind: str = "video", captions: str = "sidecar") -> list[ManifestRow]:
    """Rows for every video (or image) file under `folder`, sorted by path.

    `captions="sidecar"` reads `clip.txt` next to `clip.mp4`; files without one get an empty caption
    (they still teach the unconditional model) and are counted in the returned rows' metadata.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"folder not found: {folder}")
    suffixes = {"video": VIDEO_SUFFIXES, "image": IMAGE_SUFFIXES}.get(kind)
    if suffixes is None:
        raise UserError(f"unknown media kind {kind!r}; choose video or image")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise UserError(f"no {kind} files ({', '.join(suffixes)}) under {folder}")
    return [ManifestRow(str(p.resolve()), caption_for(p, captions)) for p in files]
