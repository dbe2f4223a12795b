"""Batches of exactly `batch_size` usable samples, in sampler order, with skipped files counted.

Items are produced by a torch DataLoader (worker processes decode in parallel, order is kept). The
stream's position counts every key it consumed, used or skipped, so a checkpoint of
:meth:`BatchStream.state_dict` restarts the stream at the next unseen key. A skipped sample is not
replaced by a re-draw: the batch is completed with the next keys of the same epoch order, which keeps
every epoch an unbiased pass over the usable data.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from emu_video.data.datasets import Skipped
from emu_video.data.sampler import SamplerState, ShardedSampler
from emu_video.errors import UserError

log = logging.getLogger(__name__)
MAX_SKIP_MESSAGES = 20


def _identity(item):
    return item


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)


class _ChunkSampler:
    """Groups the sampler's endless key stream into lists of `size` keys (one fetch per worker call)."""

    def __init__(self, sampler: ShardedSampler, size: int):
        self.sampler, self.size = sampler, size

    def __iter__(self):
        chunk = []
        for key in self.sampler:
            chunk.append(key)
            if len(chunk) == self.size:
                yield chunk
                chunk = []


class _Chunks(Dataset):
    """Fetch a list of keys in one worker call and stack the usable items there, so one batch crosses the
    process boundary as a few large tensors instead of many small ones."""

    def __init__(self, dataset: Dataset, collate_fn):
        self.dataset, self.collate_fn = dataset, collate_fn

    def __getitem__(self, keys):
        items = [self.dataset[k] for k in keys]
        valid = [it for it in items if not isinstance(it, Skipped)]
        marks = [it if isinstance(it, Skipped) else None for it in items]
        return {"marks": marks, "batch": self.collate_fn(valid) if valid else None}


def _rows(batch: dict, start: int, stop: int) -> dict:
    """Rows start..stop of a collated batch: views of its tensors (no copy), slices of its lists."""
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            out[k] = v[start:stop]
        elif isinstance(v, list) and v and torch.is_tensor(v[0]):
            out[k] = [t[start:stop] for t in v]
        else:
            out[k] = v[start:stop]
    return out


def _join(pieces: list[dict]) -> dict:
    """Concatenate collated pieces (a batch that spans two worker chunks or skipped samples)."""
    if len(pieces) == 1:
        return pieces[0]
    out: dict = {}
    for k, v in pieces[0].items():
        if torch.is_tensor(v):
            out[k] = torch.cat([p[k] for p in pieces])
        elif isinstance(v, list) and v and torch.is_tensor(v[0]):
            out[k] = [torch.cat([p[k][i] for p in pieces]) for i in range(len(v))]
        else:
            out[k] = [x for p in pieces for x in p[k]]
    return out


def collate(items: list[dict]) -> dict:
    """Stack tensors, list everything else (captions, indices); a list of tensors (text contexts) stacks per slot."""
    out: dict = {}
    for key in items[0]:
        values = [it[key] for it in items]
        if torch.is_tensor(values[0]):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (list, tuple)) and values[0] and torch.is_tensor(values[0][0]):
            out[key] = [torch.stack([v[i] for v in values]) for i in range(len(values[0]))]
        else:
            out[key] = values
    return out


class BatchStream:
    def __init__(self, dataset: Dataset, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True, num_workers: int = 0, state: dict | None = None,
                 collate_fn: Callable[[list[dict]], dict] = collate, prefetch_factor: int = 2):
        if batch_size < 1:
            raise UserError(f"batch size must be at least 1, got {batch_size}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.collate_fn, self.num_workers, self.prefetch_factor = collate_fn, int(num_workers), int(prefetch_factor)
        state = state or {}
        self.position = SamplerState.from_dict(state)
        self.skipped: Counter = Counter(state.get("skipped", {}))
        self.used = int(state.get("used", 0))
        self.sampler = ShardedSampler(len(dataset), rank, world_size, seed, shuffle, self.position)
        self._iter = None
        self._chunk: dict | None = None  # the worker chunk being consumed: marks, collated batch
        self._k = self._j = 0  # next mark of the chunk, next row of its batch
        self._epoch_used = 1 if self.position.position > 0 else 0  # resumed mid-epoch: assume earlier items were fine
        self._messages = 0

    def state_dict(self) -> dict:
        return {**self.position.to_dict(), "skipped": dict(self.skipped), "used": self.used}

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def _chunks(self):
        self.sampler.state = self.position
        kwargs = {}
        if self.num_workers > 0:
            kwargs = dict(num_workers=self.num_workers, prefetch_factor=self.prefetch_factor,
                          worker_init_fn=_worker_init, persistent_workers=False)
        chunks = _Chunks(self.dataset, self.collate_fn)
        yield from DataLoader(chunks, batch_size=None, sampler=_ChunkSampler(self.sampler, self.batch_size),
                              collate_fn=_identity, **kwargs)

    def _advance(self, used: bool) -> None:
        """Move the stream position past one key (used or skipped)."""
        before = self.position
        self.position = self.sampler.advance(before)
        if used:
            self._epoch_used += 1
        if self.position.epoch != before.epoch:
            if self._epoch_used == 0:
                raise UserError(
                    f"a whole pass over the data gave no usable sample ({self.skipped_total} skipped: "
                    f"{dict(self.skipped)}); check the manifest paths and the clip length"
                )
            self._epoch_used = 0

    def _skip(self, item: Skipped) -> None:
        self.skipped[item.reason] += 1
        if self._messages < MAX_SKIP_MESSAGES:
            self._messages += 1
            log.warning("skipped %s sample: %s", item.reason.replace("_", " "), item.message)

    def next_batch(self) -> dict:
        """The next `batch_size` usable samples. A batch that is one worker chunk without skips is handed on
        as it came (views, no copy); only batches spanning chunks or skips are concatenated."""
        pieces: list[dict] = []
        need = self.batch_size
        while need:
            if self._chunk is None or self._k >= len(self._chunk["marks"]):
                if self._iter is None:
                    self._iter = self._chunks()
                self._chunk, self._k, self._j = next(self._iter), 0, 0
            marks = self._chunk["marks"]
            if marks[self._k] is not None:
                self._skip(marks[self._k])
                self._advance(used=False)
                self._k += 1
                continue
            n = 0
            while n < need and self._k + n < len(marks) and marks[self._k + n] is None:
                self._advance(used=True)
                n += 1
            pieces.append(_rows(self._chunk["batch"], self._j, self._j + n))
            self._k, self._j, need = self._k + n, self._j + n, need - n
        self.used += self.batch_size
        return _join(pieces)

    def close(self) -> None:
        self._iter, self._chunk = None, None
