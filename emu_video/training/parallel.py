"""One interface over the ways a run is spread: a single process, DDP, or FSDP2 (`fully_shard`).

Launch with `torchrun` (one process per GPU, any number of nodes); the ranks come from its environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT). `strategy=auto` picks DDP when there are several
processes. Everything distributed goes through torch.distributed: NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import warnings
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from emu_video.errors import UserError

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_device(preference: str, local_rank: int) -> torch.device:
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("train.device=cuda but no CUDA GPU is visible")
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def is_dtensor(t: Any) -> bool:
    return type(t).__name__ == "DTensor" and hasattr(t, "full_tensor")


class Parallel:
    def __init__(self, strategy: str = "auto", backend: str = "auto", device: str = "auto"):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if strategy == "auto":
            strategy = "ddp" if self.world_size > 1 else "single"
        if strategy == "single" and self.world_size > 1:
            raise UserError(f"launched as {self.world_size} processes but parallel.strategy=single")
        if strategy == "ddp" and self.world_size == 1:
            strategy = "single"
        self.strategy = strategy
        self.device = pick_device(device, self.local_rank)
        self.distributed = strategy != "single"
        if self.distributed and not dist.is_initialized():
            if self.world_size == 1:  # FSDP in one process (e.g. to try the sharded path): a private group
                os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
                os.environ.setdefault("MASTER_PORT", str(_free_port()))
            if backend == "auto":
                backend = "nccl" if self.device.type == "cuda" else "gloo"
            kwargs = {"device_id": self.device} if backend == "nccl" else {}
            dist.init_process_group(backend, rank=self.rank, world_size=self.world_size,
                                    timeout=datetime.timedelta(minutes=30), **kwargs)
        self.backend = dist.get_backend() if self.distributed else "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return f"{self.strategy} on {self.device} ({self.world_size} process{'es' if self.world_size > 1 else ''})"

    # Wrapping -------------------------------------------------------------------------------------------
    def wrap(self, module: nn.Module, shard_units: Iterable[nn.Module] = (), bf16: bool = False) -> nn.Module:
        if self.strategy != "fsdp":  # FSDP moves each unit to the device as it shards it
            module = module.to(self.device)
        if self.strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            return DDP(module, device_ids=ids)
        if self.strategy == "fsdp":
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            warnings.filterwarnings("ignore", message=".*returned a view tensor.*")
            mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
            kwargs = {"mp_policy": mp} if mp else {}
            for unit in shard_units:
                fully_shard(unit, **kwargs)
            fully_shard(module, **kwargs)
            return module.to(self.device)
        return module

    @contextlib.contextmanager
    def no_sync(self, model: nn.Module, active: bool):
        """Skip the gradient all-reduce (for every micro-step of an accumulation but the last)."""
        if not active or self.strategy == "single":
            yield
        elif self.strategy == "ddp":
            with model.no_sync():
                yield
        else:
            model.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                model.set_requires_gradient_sync(True)

    # Collectives ----------------------------------------------------------------------------------------
    def any(self, flag: bool) -> bool:
        if not self.distributed:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=self._coll_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean(self, value: float) -> float:
        if not self.distributed:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._coll_device())
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def gather_objects(self, obj: Any) -> list[Any]:
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def _coll_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")

    # Sharded tensors --------------------------------------------------------------------------------------
    @staticmethod
    def full_tensor(t: torch.Tensor) -> torch.Tensor:
        """The whole tensor on every rank (a collective for FSDP-sharded tensors)."""
        return t.full_tensor() if is_dtensor(t) else t

    @staticmethod
    def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """`full` laid out like `like` (this rank's shard of it when `like` is sharded)."""
        if is_dtensor(like):
            from torch.distributed.tensor import distribute_tensor

            return distribute_tensor(full.to(like.device, like.dtype), like.device_mesh, like.placements)
        # With `like`'s strides too: fused AdamW on CUDA refuses moments laid out unlike their (channels-last)
        # weights, and a checkpoint holds them contiguous.
        out = torch.empty_like(like, memory_format=torch.preserve_format)
        out.copy_(full)
        return out

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
