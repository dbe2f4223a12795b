"""Speed helpers for the video U-Net: CUDA-graph replay of whole forwards, and torch.compile set-ups.

Nothing here changes the maths: a replayed graph runs the same kernels as the eager call it recorded, and a
compiled module computes the same function (up to floating-point rounding of fused kernels).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from emu_video.errors import UserError

COMPILE_MODES = ("none", "blocks", "full")


def raise_compile_limits(limit: int = 1024) -> None:
    """Let torch.compile keep many specialisations per code object.

    Regional compilation shares one code object (nn.Module's call) between every compiled block, and each
    distinct block shape is one specialisation: the default limit of 8 would silently send the rest back to
    eager mode.
    """
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name) and getattr(cfg, name) < limit:
            setattr(cfg, name, limit)
    if hasattr(cfg, "accumulated_recompile_limit"):
        cfg.accumulated_recompile_limit = max(cfg.accumulated_recompile_limit, 8 * limit)
    if hasattr(cfg, "accumulated_cache_size_limit"):
        cfg.accumulated_cache_size_limit = max(cfg.accumulated_cache_size_limit, 8 * limit)


def compile_regions(modules: Sequence[nn.Module], dynamic: bool | None = None, backend: str = "inductor", **kwargs) -> int:
    """`module.compile(...)` on each module (regional compilation); returns how many were compiled."""
    raise_compile_limits()
    for m in modules:
        m.compile(dynamic=dynamic, backend=backend, **kwargs)
    return len(modules)


def tuned_compile_kwargs(kwargs: dict, inductor_mode: str | None, tune_kernels: bool) -> dict:
    """torch.compile's keyword arguments for an inductor `mode` and/or kernel tuning.

    torch.compile takes a `mode` or an `options` dict, not both; tuning is inductor's coordinate-descent
    search over each generated kernel's launch configuration, which the max-autotune modes already include.
    """
    kwargs = dict(kwargs)
    mode = None if inductor_mode in (None, "default") else inductor_mode
    if mode is not None:
        if tune_kernels and not mode.startswith("max-autotune"):
            raise UserError(f"tune_kernels cannot be combined with inductor mode {mode!r}; "
                            "the max-autotune modes tune kernels themselves")
        kwargs["mode"] = mode
    elif tune_kernels:
        if "mode" in kwargs:
            raise UserError("tune_kernels cannot be combined with a torch.compile mode")
        kwargs["options"] = {**kwargs.get("options", {}), "coordinate_descent_tuning": True}
    return kwargs


def eager_stance():
    """A context in which compiled code runs eagerly, without compiling (torch >= 2.6; else a no-op)."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()


def uncompile_regions(modules: Sequence[nn.Module]) -> None:
    for m in modules:
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None


@dataclass
class _Entry:
    calls: int = 0
    graph: torch.cuda.CUDAGraph | None = None
    inputs: list[torch.Tensor] = field(default_factory=list)
    output: torch.Tensor | None = None
    failed: str | None = None


class CudaGraphCache:
    """Records `fn(*static, *tensors)` once per input signature into a CUDA graph and replays it.

    The first `warmup` calls of a signature run eagerly (they are real calls: torch.compile, cuDNN's
    autotuner and the allocator settle there); the next one records the graph, and every later call copies
    its inputs into the graph's static buffers, replays, and returns a copy of the static output. All graphs
    share one memory pool: they are only ever replayed one after another on one stream, and each output is
    copied out before the next replay. Parameters are read in place, so in-place weight updates (e.g.
    swapping temporal weights with `copy_`) are seen by the replays; replacing parameter tensors is not.
    A signature whose recording fails runs eagerly from then on (`failures` says why).
    """

    def __init__(self, fn: Callable[..., torch.Tensor], warmup: int = 2, max_graphs: int = 16):
        self.fn = fn
        self.warmup = max(1, int(warmup))
        self.max_graphs = int(max_graphs)
        self.entries: dict[Hashable, _Entry] = {}
        self.pool = None

    @staticmethod
    def _key(static: Hashable, tensors: Sequence[torch.Tensor]) -> Hashable:
        return (static, tuple((tuple(t.shape), t.dtype, t.device) for t in tensors))

    @property
    def failures(self) -> dict[Hashable, str]:
        return {k: e.failed for k, e in self.entries.items() if e.failed}

    @property
    def num_graphs(self) -> int:
        return sum(e.graph is not None for e in self.entries.values())

    def reset(self) -> None:
        """Drop every recorded graph and its memory."""
        self.entries.clear()
        self.pool = None

    def __call__(self, static: tuple, tensors: Sequence[torch.Tensor], context: Hashable = None) -> torch.Tensor:
        """`fn(*static, *tensors)`, replayed from a graph once warm. `context` only keys the graph (e.g. the
        autocast state it was recorded under)."""
        key = (self._key(static, tensors), context)
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= self.max_graphs:  # keep memory bounded: forget the oldest signature
                self.entries.pop(next(iter(self.entries)))
            entry = self.entries[key] = _Entry()
        if entry.failed:
            return self.fn(*static, *tensors)
        if not entry.inputs:
            # Static buffers are ordinary tensors even when made under inference mode, so that later calls
            # from outside inference mode may still write into them.
            with torch.inference_mode(False):
                entry.inputs = [torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in tensors]
        # Warm-up calls go through the same buffers as the recording, so torch.compile sees identical
        # tensor metadata then and does not recompile while the graph is being recorded.
        for buf, t in zip(entry.inputs, tensors):
            buf.copy_(t)
        if entry.graph is None:
            if entry.calls < self.warmup:
                entry.calls += 1
                return self.fn(*static, *entry.inputs)
            self._record(entry, static)
            if entry.graph is None:
                return self.fn(*static, *tensors)
        entry.graph.replay()
        return entry.output.clone()

    def _record(self, entry: _Entry, static: tuple) -> None:
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize()
            with torch.cuda.graph(graph, pool=self.pool):
                output = self.fn(*static, *entry.inputs)
        except Exception as exc:  # noqa: BLE001 - any failure to record means: run this signature eagerly
            entry.failed = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"CUDA graph recording failed, running eagerly: {entry.failed}", RuntimeWarning, stacklevel=3)
            torch.cuda.synchronize()
            return
        entry.graph, entry.output = graph, output
