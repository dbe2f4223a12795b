"""Checkpoint folders, written so that a run killed at any moment restarts from a complete one.

    OUTPUT/checkpoints/
      latest                    the name of the newest complete checkpoint (replaced atomically)
      step-00001000/
        trainable.safetensors   the trainable weights (video stages: temporal layers + conditioning input)
                                (any file may be split into stem-00000.safetensors, ... by train.max_file_mib)
        ema.safetensors         their moving average
        optimizer.safetensors   AdamW moments and step counts, per parameter name
        state.json              step, data position of every rank, RNG, counters, config (written last)

A checkpoint is written into a hidden temporary folder, flushed to disk, then renamed into place; only
then does `latest` move. Partial folders from a killed run are ignored and removed. Only safetensors and
JSON are written (no pickle).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from emu_video.errors import UserError

LATEST = "latest"
STATE = "state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def split_by_size(tensors: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    """Groups of tensors of at most `max_bytes` each (a bigger single tensor gets a group of its own)."""
    if max_bytes <= 0:
        return [tensors]
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in tensors.items():
        n = t.numel() * t.element_size()
        if groups[-1] and size + n > max_bytes:
            groups.append({})
            size = 0
        groups[-1][name] = t
        size += n
    return groups


class CheckpointStore:
    def __init__(self, root: str | os.PathLike, keep: int = 3, max_file_bytes: int = 0):
        self.root = Path(root)
        self.keep = max(1, int(keep))
        self.max_file_bytes = int(max_file_bytes)

    def complete(self) -> list[tuple[int, Path]]:
        """Complete checkpoints (those with a state.json), oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        for p in self.root.iterdir():
            m = _STEP_DIR.match(p.name)
            if m and p.is_dir() and (p / STATE).is_file():
                out.append((int(m.group(1)), p))
        return sorted(out)

    def latest(self) -> Path | None:
        pointer = self.root / LATEST
        if pointer.is_file():
            target = self.root / pointer.read_text().strip()
            if (target / STATE).is_file():
                return target
        done = self.complete()  # the pointer is missing or stale: fall back to the newest complete one
        return done[-1][1] if done else None

    def remove_partial(self) -> None:
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith(".tmp-") and p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)

    def write(self, step: int, tensors: dict[str, dict[str, torch.Tensor]], state: dict[str, Any]) -> Path:
        """Write one checkpoint: `tensors` maps file stems to tensor dicts; `state` goes to state.json."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / step_name(step)
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for stem, tensor_dict in tensors.items():
            groups = split_by_size(tensor_dict, self.max_file_bytes)
            for i, group in enumerate(groups):
                path = tmp / (f"{stem}.safetensors" if len(groups) == 1 else f"{stem}-{i:05d}.safetensors")
                save_file({k: v.detach().contiguous().cpu() for k, v in group.items()}, str(path))
                _fsync_file(path)
        state_path = tmp / STATE
        state_path.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
        _fsync_file(state_path)
        _fsync_dir(tmp)
        if final.exists():  # the same step written again after a restart
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        write_text_atomic(self.root / LATEST, final.name + "\n")
        self.prune()
        return final

    def prune(self) -> None:
        done = self.complete()
        latest = self.latest()
        for _, path in done[: max(0, len(done) - self.keep)]:
            if path != latest:
                shutil.rmtree(path, ignore_errors=True)


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / STATE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"unreadable checkpoint state {folder / STATE}: {exc}") from exc


def tensor_files(folder: Path, stem: str) -> list[Path]:
    """`stem.safetensors`, or its parts `stem-00000.safetensors`, ... when it was split by size."""
    whole = folder / f"{stem}.safetensors"
    return [whole] if whole.is_file() else sorted(folder.glob(f"{stem}-[0-9][0-9][0-9][0-9][0-9].safetensors"))


def read_tensors(folder: Path, stem: str) -> dict[str, torch.Tensor]:
    files = tensor_files(folder, stem)
    if not files:
        raise UserError(f"checkpoint {folder} has no {stem}.safetensors")
    out: dict[str, torch.Tensor] = {}
    for path in files:
        out.update(load_file(str(path)))
    return out
