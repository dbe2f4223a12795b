"""Manifests: one row per media file (video or image) with its caption and optional metadata.

Two formats, chosen by the file suffix:

* JSONL (``.jsonl``): one JSON object per line, ``{"path": "videos/0001.mp4", "caption": "...", ...}``;
  every other key is kept as metadata (Shapes World writes ``fps``, ``num_frames`` and ``scene``).
* CSV (``.csv``): a header with at least the ``path`` and ``caption`` columns; other columns are metadata.

Relative paths are relative to the manifest's own folder, so a dataset folder can be moved as a whole.

A row whose caption (or other text) is not valid UTF-8 is one bad sample, not a bad manifest: it is kept
with ``problem`` set (its caption decoded with U+FFFD replacements, for display only), training skips and
counts it like an unreadable video, and ``write_manifest`` / ``write_shards`` leave it out. The same holds
for a ``.txt`` caption sidecar that is not UTF-8.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emu_video.errors import UserError
from emu_video.io.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

MANIFEST_SUFFIXES = (".jsonl", ".csv")
NOT_UTF8 = "not UTF-8"
log = logging.getLogger(__name__)


@dataclass
class ManifestRow:
    path: str  # absolute path of the media file
    caption: str
    metadata: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # why this row is unusable (e.g. a caption that is not UTF-8); empty when it is fine

    @property
    def is_video(self) -> bool:
        return Path(self.path).suffix.lower() in VIDEO_SUFFIXES


def _is_clean(text: str) -> bool:
    """False for text holding lone surrogates: undecodable bytes (kept by 'surrogateescape') or a JSON
    escape such as "\\udcb2", neither of which can be encoded as UTF-8 again."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _readable(text: str) -> str:
    """Text for display: undecodable bytes (or escaped lone surrogates) become replacement characters."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _clean_value(value):
    """(value with undecodable text replaced, whether it was clean) for a JSON value."""
    if isinstance(value, str):
        return (value, True) if _is_clean(value) else (_readable(value), False)
    if isinstance(value, list):
        pairs = [_clean_value(v) for v in value]
        return [v for v, _ in pairs], all(ok for _, ok in pairs)
    if isinstance(value, dict):
        pairs = {_readable(k): _clean_value(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, all(ok for _, ok in pairs.values()) and all(
            _is_clean(k) for k in value)
    return value, True


def _row(raw: dict[str, Any], root: Path, where: str) -> ManifestRow:
    if "path" not in raw or not str(raw["path"]).strip():
        raise UserError(f"{where}: no 'path'")
    if "caption" not in raw or raw["caption"] is None:
        raise UserError(f"{where}: no 'caption' (use an empty string for an uncaptioned file)")
    # A path with undecodable bytes stays as it is: 'surrogateescape' is how the OS layer names such files.
    path = Path(str(raw["path"]).strip())
    rest, clean = _clean_value({k: v for k, v in raw.items() if k != "path"})
    caption = str(rest.pop("caption"))
    problem = "" if clean else f"{where}: caption or metadata is {NOT_UTF8}"
    return ManifestRow(str(path if path.is_absolute() else root / path), caption, rest, problem)


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """All rows of a JSONL or CSV manifest, paths made absolute (files are not opened here)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    suffix = path.suffix.lower()
    root = path.resolve().parent
    rows: list[ManifestRow] = []
    if suffix not in MANIFEST_SUFFIXES:
        raise UserError(f"{path}: a manifest must be .jsonl or .csv")
    # Undecodable bytes are kept as lone surrogates, so one bad caption marks one row, not the whole file.
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    if suffix == ".jsonl":
        with io.StringIO(text) as fh:
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
        with io.StringIO(text, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"path", "caption"} - set(reader.fieldnames or ())
            if missing:
                raise UserError(f"{path}: the CSV header needs the columns path and caption "
                                f"(missing {sorted(missing)})")
            for n, raw in enumerate(reader, 2):
                rows.append(_row(raw, root, f"{path}:{n}"))
    if not rows:
        raise UserError(f"{path}: the manifest has no rows")
    warn_problems(rows, str(path))
    return rows


def warn_problems(rows: list[ManifestRow], source: str) -> int:
    """Log one warning naming the unusable rows (the first few); return how many there are."""
    bad = [r for r in rows if r.problem]
    if bad:
        shown = "; ".join(r.problem for r in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        log.warning("%s: %d of %d row(s) will be skipped: %s", source, len(bad), len(rows), shown)
    return len(bad)


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
            if row.problem:
                continue
            p = Path(row.path).resolve()
            try:
                rel = p.relative_to(root).as_posix()
            except ValueError:
                rel = str(p)
            fh.write(json.dumps({"path": rel, "caption": row.caption, **row.metadata}) + "\n")
    os.replace(tmp, path)
    return path


def caption_for(media: Path, source: str) -> str:
    """A caption for a media file: its sidecar `.txt`, its file name, or nothing. A sidecar that is not
    UTF-8 raises UnicodeDecodeError (`scan_folder` marks that file's row as a problem)."""
    if source == "sidecar":
        side = media.with_suffix(".txt")
        return side.read_bytes().decode("utf-8").strip() if side.exists() else ""
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
    rows = []
    for p in files:
        try:
            rows.append(ManifestRow(str(p.resolve()), caption_for(p, captions)))
        except UnicodeDecodeError as exc:
            side = p.with_suffix(".txt")
            caption = side.read_bytes().decode("utf-8", "replace").strip()
            rows.append(ManifestRow(str(p.resolve()), caption, problem=f"{side}: caption {NOT_UTF8} ({exc.reason} "
                                                                      f"at byte {exc.start})"))
    warn_problems(rows, str(folder))
    return rows
