"""Speed helpers for the video U-Net: CUDA-graph replay of whole forwards, torch.compile set-ups, and
`FastPathsMixin`, the U-Net's speed switches (fused projections and Triton kernels, channels-last frames,
compilation, CUDA graphs, mixed precision) and the way a forward is executed under them.

Nothing here changes the maths: a replayed graph runs the same kernels as the eager call it recorded, and a
compiled module computes the same function (up to floating-point rounding of fused kernels).

`VideoUNet` inherits `FastPathsMixin`; this module never imports the network's module (unet.py imports this
one, not the reverse).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch._functorch.config
from torch import nn

from emu_video.errors import UserError
from emu_video.models.attention import Attention, SpatialTransformer
from emu_video.models.resnet import Downsample, ResnetBlock, Upsample
from emu_video.models.temporal import TemporalConv, TemporalTransformer

if TYPE_CHECKING:  # annotations only (typing.Self needs Python 3.11)
    from typing_extensions import Self

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



class FastPathsMixin:
    """The speed settings of an `nn.Module` U-Net; none of them changes the maths.

    The class calls `_init_fast_paths()` in its `__init__` and provides the network itself:
    `_network(use_temporal, sample, timestep, contexts)` (the whole computation on checked inputs) and the two
    heads it runs through `_heads()`: `_input_head(frames, num_frames, use_temporal)` and `_output_head(h)`.
    Its `forward` checks the inputs and hands them to `_execute`.
    """

    def _init_fast_paths(self) -> None:
        self.channels_last = False
        self.compile_mode = "none"
        self.compile_image_model = True
        self.compile_memory_budget: float | None = None
        self._compiled_forward = None
        self._compiled_heads: tuple | None = None  # the input and output heads, compiled with "blocks"
        self._cuda_graphs: CudaGraphCache | None = None

    # Kernels and layouts -----------------------------------------------------------------------------------
    def set_fast_paths(
        self, enabled: bool = True, frames_kernel: bool | None = None, conv_kernel: bool | None = None
    ) -> Self:
        """Fused q/k/v projections, temporal layers without layout transposes, and on CUDA the Triton kernels:
        the fused short-sequence kernel for temporal self-attention (`frame_attention`; `frames_kernel`
        switches it alone) and, in inference, the implicit-GEMM temporal convolution (`frame_conv`;
        `conv_kernel`). Both default to `enabled`. All on by default; off gives the reference formulation of
        the same maths (for tests and measurements)."""
        frames_kernel = enabled if frames_kernel is None else frames_kernel
        conv_kernel = enabled if conv_kernel is None else conv_kernel
        for module in self.modules():
            if isinstance(module, (Attention, TemporalConv, TemporalTransformer)):
                module.fast_path = bool(enabled)
            if isinstance(module, Attention):
                module.frames_kernel = bool(frames_kernel)
            if isinstance(module, TemporalConv):
                module.conv_kernel = bool(conv_kernel)
        return self

    def to_channels_last(self, enabled: bool = True) -> Self:
        """Keep frames as (B*T, H, W, C) in memory: convolutions run in cuDNN's NHWC kernels and the
        transformers' token views (B*T, H*W, C) and (B, T, H*W, C) need no copies."""
        fmt2d = torch.channels_last if enabled else torch.contiguous_format
        fmt3d = torch.channels_last_3d if enabled else torch.contiguous_format
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                fmt = fmt2d if isinstance(module, nn.Conv2d) else fmt3d
                module.weight.data = module.weight.data.contiguous(memory_format=fmt)
        self.channels_last = bool(enabled)
        return self

    def to_mixed_precision(
        self, frozen_dtype: torch.dtype = torch.bfloat16, trainable_dtype: torch.dtype = torch.float32
    ) -> Self:
        """For training with autocast: parameters that do not require grad (the frozen spatial weights) in
        `frozen_dtype`, trainable ones in `trainable_dtype` (their optimizer master copy)."""
        for p in self.parameters():
            p.data = p.data.to(trainable_dtype if p.requires_grad else frozen_dtype)
        return self

    # Compilation -------------------------------------------------------------------------------------------
    def _regions(self) -> list[nn.Module]:
        # The resamplers too: a convolution, its temporal twin and, going up, the nearest-neighbour upsampling
        # (compiled, the temporal convolution's backward gets its gradient in the layout it needs).
        kinds = (ResnetBlock, SpatialTransformer, TemporalTransformer, Downsample, Upsample)
        return [m for m in self.modules() if isinstance(m, kinds)]

    def set_compile(
        self,
        mode: str = "blocks",
        dynamic: bool | None = None,
        backend: str = "inductor",
        image_model: bool = True,
        inductor_mode: str | None = None,
        memory_budget: float | None = None,
        tune_kernels: bool = False,
        **kwargs,
    ) -> Self:
        """torch.compile the network: "blocks" compiles each ResNet and transformer (regional compilation:
        blocks of one shape share their compiled code, so compiling is quick), "full" the whole forward as
        one graph (more fusion, much longer compiles), "none" undoes it. `image_model=False` leaves the
        text-to-image path (use_temporal=False) uncompiled: it is a small share of a video's work.
        `inductor_mode` is torch.compile's `mode` (e.g. "max-autotune-no-cudagraphs"); other keyword
        arguments go to torch.compile as they are.

        `memory_budget` (training, 0 < budget <= 1): the share of the compiled regions' activations kept for
        the backward pass; the compiler recomputes the rest, choosing the cheapest ops to recompute
        (AOTAutograd's `activation_memory_budget`). It is the compiled alternative to
        `enable_gradient_checkpointing`, which recomputes whole blocks.

        `tune_kernels`: inductor times variants of each generated Triton kernel (block sizes, warps) and
        keeps the fastest (its coordinate-descent tuning). The normalisation and elementwise kernels get a
        little faster; compiling takes four times longer or more."""
        if mode not in COMPILE_MODES:
            raise UserError(f"unknown compile mode {mode!r}; choose one of: {', '.join(COMPILE_MODES)}")
        if memory_budget is not None and not 0.0 < memory_budget <= 1.0:
            raise UserError(f"memory_budget must be in (0, 1], got {memory_budget}")
        kwargs = tuned_compile_kwargs(kwargs, inductor_mode, tune_kernels)
        uncompile_regions(self._regions())
        self._compiled_forward = self._compiled_heads = None
        if mode == "blocks":
            compile_regions(self._regions(), dynamic=dynamic, backend=backend, **kwargs)
            # The input and output heads (convolutions, the output GroupNorm + SiLU) as two more regions.
            self._compiled_heads = tuple(torch.compile(f, dynamic=dynamic, backend=backend, **kwargs)
                                         for f in (self._input_head, self._output_head))
        elif mode == "full":
            raise_compile_limits()
            self._compiled_forward = torch.compile(self._network, dynamic=dynamic, backend=backend, **kwargs)
        self.compile_mode = mode
        self.compile_image_model = bool(image_model)
        self.compile_memory_budget = None if mode == "none" else memory_budget
        if self._cuda_graphs is not None:
            self._cuda_graphs.reset()
        return self

    # CUDA graphs -------------------------------------------------------------------------------------------
    def enable_cuda_graphs(self, enabled: bool = True, warmup: int = 2) -> Self:
        """Record each inference forward (per input shape) into a CUDA graph and replay it: one launch per
        step instead of thousands. Only for CUDA inputs without autograd; the first `warmup` calls of each
        shape run normally."""
        self._cuda_graphs = CudaGraphCache(self._forward_tensors, warmup=warmup) if enabled else None
        return self

    def reset_cuda_graphs(self) -> None:
        """Free the recorded graphs (they are recorded again on the next calls)."""
        if self._cuda_graphs is not None:
            self._cuda_graphs.reset()

    @property
    def cuda_graphs(self) -> CudaGraphCache | None:
        return self._cuda_graphs

    # All of them -------------------------------------------------------------------------------------------
    def optimize_for_inference(
        self,
        dtype: torch.dtype | None = torch.bfloat16,
        channels_last: bool = True,
        compile: str = "auto",
        cuda_graphs: bool = True,
        dynamic: bool | None = False,
        compile_image_model: bool = True,
        tune_kernels: bool = False,
    ) -> Self:
        """bf16 weights, channels-last frames, compiled blocks and CUDA-graph replay (each optional).

        compile: a `set_compile` mode, or "auto" for "blocks" on a GPU and "none" on the CPU. CUDA graphs
        apply to CUDA weights only. `dynamic=False` compiles each input shape on its own (static shapes give
        the fastest kernels; a pipeline uses two or three shapes); None lets torch.compile switch to
        dynamic shapes at the second shape. `tune_kernels` tunes the compiled Triton kernels (`set_compile`).
        Outputs equal the unoptimised network's within bf16 rounding.
        """
        self.eval().requires_grad_(False)
        if dtype is not None:
            self.to(dtype)
        self.set_fast_paths(True)
        self.to_channels_last(channels_last)
        on_cuda = self.conv_in.weight.is_cuda
        if compile == "auto":
            compile = "blocks" if on_cuda else "none"
        self.set_compile(compile or "none", dynamic=dynamic, image_model=compile_image_model,
                         tune_kernels=tune_kernels)
        self.enable_cuda_graphs(cuda_graphs and on_cuda)
        return self

    # Running the network under these settings --------------------------------------------------------------
    def _execute(self, use_temporal: bool, sample: torch.Tensor, timestep: torch.Tensor,
                 contexts: list[torch.Tensor], cache=None) -> torch.Tensor:
        """The network on checked inputs (what `forward` hands over): replayed from a CUDA graph for CUDA
        inputs without autograd once graphs are on, else run directly. With a step cache (deep_cache.py) the
        network runs without graphs (which pass runs is decided per step, outside any recorded graph), and
        under "full" compilation eagerly."""
        if cache is not None:
            network = self._network if self.compile_mode == "full" else self._forward_network
            return network(use_temporal, sample, timestep, list(contexts), cache)
        graphs = self._cuda_graphs
        if graphs is not None and sample.is_cuda and not torch.is_grad_enabled():
            return graphs((use_temporal,), [sample, timestep, *contexts], context=torch.is_autocast_enabled("cuda"))
        return self._forward_tensors(use_temporal, sample, timestep, *contexts)

    def _forward_tensors(self, use_temporal: bool, sample: torch.Tensor, timestep: torch.Tensor, *contexts) -> torch.Tensor:
        """The network on checked inputs: (B, C', T, H, W) latents, (B,) timesteps, one (B, L, D) tensor per
        text context (what CUDA graphs record; `_network`, compiled or not, does the work)."""
        if not use_temporal and not self.compile_image_model and self.compile_mode != "none":
            with eager_stance():
                return self._network(use_temporal, sample, timestep, list(contexts))
        network = self._compiled_forward if self._compiled_forward is not None else self._network
        with contextlib.ExitStack() as stack:
            if self.compile_mode != "none" and torch.is_grad_enabled():
                for patch in self._training_compile_options():
                    stack.enter_context(patch)
            return network(use_temporal, sample, timestep, list(contexts))

    def _forward_network(self, use_temporal: bool, sample: torch.Tensor, timestep: torch.Tensor,
                         contexts: list[torch.Tensor], cache) -> torch.Tensor:
        """`_network` with a step cache, under the same compile stance as `_forward_tensors`."""
        if not use_temporal and not self.compile_image_model and self.compile_mode != "none":
            with eager_stance():
                return self._network(use_temporal, sample, timestep, contexts, cache)
        return self._network(use_temporal, sample, timestep, contexts, cache)

    def _heads(self) -> tuple[Callable, Callable]:
        """The input and output heads `_network` runs: compiled ones under "blocks", else the plain methods."""
        return self._compiled_heads or (self._input_head, self._output_head)

    def _training_compile_options(self) -> list:
        """Compiler settings for regions compiled under autograd, read when a region is compiled (its first
        call): the partitioner's memory budget, and channels-last layouts kept in the backward graph.
        Inductor's own heuristic turns its layout optimisation off in training graphs that hold a
        convolution with at most half as many output as input channels (the U-Net's skip-concatenating
        ResNets); gradients then come out in NCHW and every convolution's backward copies them back to
        channels-last first (a measured 3 % of a training step)."""
        import torch._inductor.config  # heavy; imported only once something is compiled

        patches = []
        if self.compile_memory_budget is not None:
            patches.append(torch._functorch.config.patch(activation_memory_budget=self.compile_memory_budget))
        if self.channels_last and hasattr(torch._inductor.config, "force_layout_optimization"):
            patches.append(torch._inductor.config.patch(force_layout_optimization=True))
        return patches
