"""A cache of a folder's network features (e.g. the I3D features of a real set for FVD).

The real set's features cost the most and are the same for every model compared, so they are kept in one
`.npz` file per (folder, network) inside a cache folder. A cached file is used only when its key equals the
current one: the folder's video list with each file's size and modification time, the network file's SHA-256,
and every setting that changes the features (frames, stride, resolution, dtype, ...). Anything different and
the features are computed again and the file replaced; files are written under a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

VERSION = 1


def file_sha256(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def files_key(folder, paths: list[Path]) -> list[list]:
    """[relative path, size, mtime_ns] of each video: a touched, replaced, added or removed file changes it."""
    folder = Path(folder)
    out = []
    for p in paths:
        st = p.stat()
        out.append([p.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns])
    return out


def make_key(folder, paths: list[Path], settings: dict) -> str:
    return json.dumps({"version": VERSION, "files": files_key(folder, paths), **settings}, sort_keys=True)


class FeatureCache:
    """`load(folder, name, key)` / `save(folder, name, key, features)` over files in `root`."""

    def __init__(self, root):
        self.root = Path(root)

    def path_for(self, folder, name: str) -> Path:
        where = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
        return self.root / f"{name}-{Path(folder).resolve().name}-{where}.npz"

    def load(self, folder, name: str, key: str) -> np.ndarray | None:
        path = self.path_for(folder, name)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != key:
                    return None
                return data["features"].astype(np.float32)
        except (OSError, ValueError, KeyError):  # unreadable or foreign file: compute again
            return None

    def save(self, folder, name: str, key: str, features: np.ndarray) -> Path:
        path = self.path_for(folder, name)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, features=np.asarray(features, dtype=np.float32), key=np.array(key))
        os.replace(tmp, path)
        return path
