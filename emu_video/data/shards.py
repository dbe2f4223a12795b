"""WebDataset tar shards: writing them from a manifest, and reading their samples by index.

A shard is a plain (uncompressed) tar whose members are grouped by key, WebDataset style:
``000123.mp4`` (or .png, .jpg, ...), ``000123.txt`` (the caption) and optionally ``000123.json``
(metadata). Shards written by other WebDataset tools read the same way.

Samples are read by index from an index of member offsets (built once per shard, and cached in a
``.index.json`` sidecar when the folder is writable), so the same resumable, rank-sharded sampler
serves folders of files and shards alike. Shards must sit on a file system (local or network mounted).
"""

from __future__ import annotations

import glob
import io
import json
import os
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from emu_video.data.manifest import ManifestRow
from emu_video.errors import UserError
from emu_video.io.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

MEDIA_EXTS = tuple(s.lstrip(".") for s in VIDEO_SUFFIXES + IMAGE_SUFFIXES)
INDEX_VERSION = 1


def expand_shards(patterns: Sequence[str]) -> list[Path]:
    """Shard paths from paths, globs and folders (every *.tar inside), in sorted order."""
    out: list[Path] = []
    for pattern in patterns:
        p = Path(pattern)
        if p.is_dir():
            matches = sorted(str(x) for x in p.glob("*.tar"))
        else:
            matches = sorted(glob.glob(str(pattern))) if any(c in str(pattern) for c in "*?[") else [str(p)]
        for m in matches:
            if not Path(m).is_file():
                raise UserError(f"tar shard not found: {m}")
            out.append(Path(m))
    if not out:
        raise UserError(f"no tar shards match {list(patterns)}")
    return out


def _split_key(name: str) -> tuple[str, str]:
    base = os.path.basename(name)
    stem, _, ext = base.partition(".")
    directory = os.path.dirname(name)
    return (f"{directory}/{stem}" if directory else stem), ext.lower()


def _scan(shard: Path) -> list[dict]:
    samples: dict[str, dict] = {}
    order: list[str] = []
    with tarfile.open(shard, mode="r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, ext = _split_key(member.name)
            if key not in samples:
                samples[key] = {"key": key, "members": {}}
                order.append(key)
            samples[key]["members"][ext] = [member.offset_data, member.size]
    return [samples[k] for k in order]


def load_index(shard: Path) -> list[dict]:
    """Samples of one shard: [{"key", "members": {ext: [offset, size]}}], from the sidecar if it is current."""
    side = shard.with_name(shard.name + ".index.json")
    stat = shard.stat()
    if side.exists():
        try:
            d = json.loads(side.read_text())
            if d.get("version") == INDEX_VERSION and d.get("size") == stat.st_size:
                return d["samples"]
        except (OSError, json.JSONDecodeError, KeyError):
            pass
    samples = _scan(shard)
    try:
        tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": INDEX_VERSION, "size": stat.st_size, "samples": samples}))
        os.replace(tmp, side)
    except OSError:
        pass  # a read-only data folder: rebuild the index next time
    return samples


@dataclass
class ShardSample:
    shard: int
    key: str
    media_ext: str
    members: dict[str, list[int]]


class ShardReader:
    """Random access to the samples of a list of shards (file handles are opened per process)."""

    def __init__(self, shards: Sequence[str | os.PathLike]):
        self.paths = expand_shards([str(s) for s in shards])
        self.samples: list[ShardSample] = []
        for i, path in enumerate(self.paths):
            for s in load_index(path):
                media = [e for e in s["members"] if e in MEDIA_EXTS]
                if media:
                    self.samples.append(ShardSample(i, s["key"], media[0], s["members"]))
        if not self.samples:
            raise UserError(f"no media samples in the shards {[str(p) for p in self.paths[:3]]}")
        self._handles: dict[int, object] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_handles"] = {}
        return d

    def _read(self, shard: int, offset: int, size: int) -> bytes:
        if self._pid != os.getpid():
            self._handles, self._pid = {}, os.getpid()
        fh = self._handles.get(shard)
        if fh is None:
            fh = self._handles[shard] = open(self.paths[shard], "rb")
        fh.seek(offset)
        return fh.read(size)

    def name(self, index: int) -> str:
        s = self.samples[index]
        return f"{self.paths[s.shard]}:{s.key}.{s.media_ext}"

    def read(self, index: int) -> tuple[bytes, str, str, dict]:
        """(media bytes, suffix like '.mp4', caption, metadata)."""
        s = self.samples[index]
        media = self._read(s.shard, *s.members[s.media_ext])
        caption, meta = "", {}
        if "json" in s.members:
            meta = json.loads(self._read(s.shard, *s.members["json"]).decode("utf-8"))
            caption = str(meta.pop("caption", "")) if isinstance(meta, dict) else ""
        for ext in ("txt", "caption", "text"):
            if ext in s.members:
                caption = self._read(s.shard, *s.members[ext]).decode("utf-8").strip()
                break
        return media, "." + s.media_ext, caption, meta if isinstance(meta, dict) else {}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(rows: Iterable[ManifestRow], out_dir: str | os.PathLike, per_shard: int = 1000,
                 prefix: str = "shard") -> list[Path]:
    """Pack manifest rows into `out_dir/{prefix}-000000.tar`, ... (`per_shard` samples each, atomic writes)."""
    if per_shard < 1:
        raise UserError("per_shard must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tar, tmp, count, n = None, None, 0, 0

    def close() -> None:
        nonlocal tar
        if tar is not None:
            tar.close()
            final = out / f"{prefix}-{len(written):06d}.tar"
            os.replace(tmp, final)
            written.append(final)
            tar = None

    skipped = []
    for row in rows:
        if row.problem:  # e.g. a caption that is not UTF-8: the read_manifest warning named it
            skipped.append(row)
            continue
        src = Path(row.path)
        if not src.is_file():
            raise UserError(f"manifest file not found: {src}")
        if tar is None:
            tmp = out / f".{prefix}-{len(written):06d}.tar.tmp"
            tar = tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT)
            count = 0
        key = f"{n:09d}"
        _add_bytes(tar, f"{key}{src.suffix.lower()}", src.read_bytes())
        _add_bytes(tar, f"{key}.txt", row.caption.encode("utf-8"))
        if row.metadata:
            _add_bytes(tar, f"{key}.json", json.dumps(row.metadata).encode("utf-8"))
        n += 1
        count += 1
        if count >= per_shard:
            close()
    close()
    if not written:
        raise UserError("no rows to write into shards" + (f" ({len(skipped)} unusable: {skipped[0].problem})"
                                                           if skipped else ""))
    for path in written:
        load_index(path)
    return written
