"""A resumable, rank-sharded sampler: an endless stream of (epoch, index) keys.

Epoch e visits a permutation of the dataset drawn from (seed, e); rank r of W takes every W-th entry
starting at r, so ranks see disjoint data. The state is (epoch, position in this rank's share), which
is all a checkpoint needs to restart the stream exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch.utils.data import Sampler

from emu_video.errors import UserError


@dataclass
class SamplerState:
    epoch: int = 0
    position: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SamplerState:
        return cls(int(d.get("epoch", 0)), int(d.get("position", 0)))


class ShardedSampler(Sampler):
    def __init__(self, size: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True,
                 state: SamplerState | None = None):
        if size < world_size:
            raise UserError(f"the data has {size} item(s), fewer than the {world_size} ranks that share it")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.size, self.rank, self.world_size = int(size), int(rank), int(world_size)
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.state = state or SamplerState()
        self._cache: tuple[int, list[int]] | None = None

    def share(self, epoch: int) -> list[int]:
        """This rank's indices for `epoch`, in visiting order."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        if self.shuffle:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) & 0x7FFFFFFFFFFFFFFF)
            perm = torch.randperm(self.size, generator=g).tolist()
        else:
            perm = list(range(self.size))
        share = perm[self.rank :: self.world_size]
        self._cache = (epoch, share)
        return share

    def advance(self, state: SamplerState) -> SamplerState:
        """The state after taking one more item."""
        if state.position + 1 >= len(self.share(state.epoch)):
            return SamplerState(state.epoch + 1, 0)
        return SamplerState(state.epoch, state.position + 1)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, pos = self.state.epoch, self.state.position
        while True:
            share = self.share(epoch)
            for i in range(pos, len(share)):
                yield epoch, share[i]
            epoch, pos = epoch + 1, 0

    def __len__(self) -> int:  # endless; DataLoader only needs this for progress estimates
        return 2**62
