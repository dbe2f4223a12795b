"""The factorized spatio-temporal U-Net: one network that is the text-to-image model without its temporal
layers and the image-conditioned video model with them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch._functorch.config
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from emu_video.errors import UserError
from emu_video.models.attention import Attention, SpatialTransformer
from emu_video.models.blocks import DownBlock, MidBlock, UpBlock
from emu_video.models.config import VideoUNetConfig
from emu_video.models.embeddings import TimestepEmbedding, sinusoidal_embedding
from emu_video.models.fast import (
    COMPILE_MODES,
    CudaGraphCache,
    compile_regions,
    eager_stance,
    raise_compile_limits,
    tuned_compile_kwargs,
    uncompile_regions,
)
from emu_video.models.resnet import Downsample, ResnetBlock, Upsample
from emu_video.models.temporal import TemporalConv, TemporalTransformer

# Parameters whose names contain one of these belong to the video model (trainable); the rest are the
# frozen spatial weights, named exactly as in diffusers' UNet2DConditionModel.
VIDEO_PARAM_MARKERS = ("temporal_", "conv_in_cond.")


def is_video_param(name: str) -> bool:
    return any(m in name for m in VIDEO_PARAM_MARKERS)


class VideoUNet(nn.Module):
    """Latent-diffusion U-Net over (B, C, T, H, W) video latents (or (B, C, H, W) images).

    Input channels: the noisy latent (C), optionally followed by the conditioning latent zero-padded over
    time (C) and the binary mask (1): `2C+1` in all. The C+1 conditioning channels go through
    `conv_in_cond`, a zero-initialised, bias-free convolution added to `conv_in` — the same as one
    conv over the concatenation, with the pretrained kernel kept under its own name.
    """

    def __init__(self, config: VideoUNetConfig):
        super().__init__()
        self.config = cfg = config
        ch0 = cfg.block_out_channels[0]
        temb_dim = ch0 * 4
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch0, 3, padding=1)
        if cfg.image_conditioning:
            self.conv_in_cond = nn.Conv2d(cfg.latent_channels + 1, ch0, 3, padding=1, bias=False)
            nn.init.zeros_(self.conv_in_cond.weight)
        else:
            self.conv_in_cond = None
        self.temporal_conv_in = TemporalConv(ch0, cfg.temporal_kernel_size) if cfg.temporal_layers else None
        self.time_embedding = TimestepEmbedding(ch0, temb_dim)
        self.down_blocks = nn.ModuleList()
        cin = ch0
        for level, cout in enumerate(cfg.block_out_channels):
            self.down_blocks.append(DownBlock(cfg, level, cin, temb_dim))
            cin = cout
        self.mid_block = MidBlock(cfg, temb_dim)
        self.up_blocks = nn.ModuleList()
        prev = cfg.block_out_channels[-1]
        for index in range(len(cfg.block_out_channels)):
            self.up_blocks.append(UpBlock(cfg, index, prev, temb_dim))
            prev = cfg.block_out_channels[len(cfg.block_out_channels) - 1 - index]
        self.conv_norm_out = nn.GroupNorm(cfg.norm_num_groups, ch0, eps=cfg.norm_eps)
        self.gradient_checkpointing = False
        self.conv_out = nn.Conv2d(ch0, cfg.out_channels, 3, padding=1)
        # Speed settings (see optimize_for_inference); none of them changes the maths.
        self.channels_last = False
        self.compile_mode = "none"
        self.compile_image_model = True
        self.compile_memory_budget: float | None = None
        self._compiled_forward = None
        self._compiled_heads: tuple | None = None  # the input and output heads, compiled with "blocks"
        self._cuda_graphs: CudaGraphCache | None = None

    # Parameter groups ---------------------------------------------------------------------------------
    def video_named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        return ((n, p) for n, p in self.named_parameters() if is_video_param(n))

    def spatial_named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        return ((n, p) for n, p in self.named_parameters() if not is_video_param(n))

    def video_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.video_named_parameters()]

    def freeze_spatial(self, frozen: bool = True) -> VideoUNet:
        """Freeze the text-to-image weights; only temporal layers and the conditioning input channels train."""
        for _, p in self.spatial_named_parameters():
            p.requires_grad_(not frozen)
        for _, p in self.video_named_parameters():
            p.requires_grad_(True)
        return self

    def parameter_counts(self) -> dict[str, int]:
        spatial = sum(p.numel() for _, p in self.spatial_named_parameters())
        video = sum(p.numel() for _, p in self.video_named_parameters())
        return {"total_params": spatial + video, "spatial_params": spatial, "temporal_params": video}

    @torch.no_grad()
    def reset_video_layers(self) -> None:
        """Temporal layers back to identity and conditioning channels back to zero."""
        for module in self.modules():
            if hasattr(module, "reset_to_identity") and module is not self:
                module.reset_to_identity()
        if self.conv_in_cond is not None:
            self.conv_in_cond.weight.zero_()

    @torch.no_grad()
    def with_clause_tokens(self, clause_tokens: int) -> VideoUNet:
        """A copy of this U-Net (float32, CPU) that reads `clause_tokens` trailing context rows as clause
        tokens. Every weight is kept; clause attention layers are new and start as identity, so the copy
        computes exactly what this U-Net does (given contexts with the extra rows)."""
        cfg = VideoUNetConfig.from_dict({**self.config.to_dict(), "clause_tokens": int(clause_tokens)})
        other = VideoUNet(cfg)
        own = {k: v.float().cpu() for k, v in self.state_dict().items()}
        theirs = other.state_dict()
        other.load_state_dict({k: own.get(k, theirs[k]) for k in theirs})
        return other

    def enable_gradient_checkpointing(self, enabled: bool = True) -> VideoUNet:
        """Recompute each block's activations in the backward pass instead of storing them."""
        self.gradient_checkpointing = enabled
        return self

    def _run(self, block, *args):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    # Speed -------------------------------------------------------------------------------------------------
    def set_fast_paths(
        self, enabled: bool = True, frames_kernel: bool | None = None, conv_kernel: bool | None = None
    ) -> VideoUNet:
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

    def to_channels_last(self, enabled: bool = True) -> VideoUNet:
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
    ) -> VideoUNet:
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

    def enable_cuda_graphs(self, enabled: bool = True, warmup: int = 2) -> VideoUNet:
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

    def optimize_for_inference(
        self,
        dtype: torch.dtype | None = torch.bfloat16,
        channels_last: bool = True,
        compile: str = "auto",
        cuda_graphs: bool = True,
        dynamic: bool | None = False,
        compile_image_model: bool = True,
        tune_kernels: bool = False,
    ) -> VideoUNet:
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

    def to_mixed_precision(self, frozen_dtype: torch.dtype = torch.bfloat16, trainable_dtype: torch.dtype = torch.float32) -> VideoUNet:
        """For training with autocast: parameters that do not require grad (the frozen spatial weights) in
        `frozen_dtype`, trainable ones in `trainable_dtype` (their optimizer master copy)."""
        for p in self.parameters():
            p.data = p.data.to(trainable_dtype if p.requires_grad else frozen_dtype)
        return self

    # Forward -------------------------------------------------------------------------------------------
    def _checked_contexts(self, encoder_hidden_states, batch: int) -> list[torch.Tensor]:
        ctx = [encoder_hidden_states] if torch.is_tensor(encoder_hidden_states) else list(encoder_hidden_states)
        dims = self.config.context_dims
        if len(ctx) != len(dims):
            raise UserError(f"the U-Net takes {len(dims)} text context(s) of dims {list(dims)}, got {len(ctx)}")
        out = []
        for c, d in zip(ctx, dims):
            if c.ndim != 3 or c.shape[-1] != d or c.shape[0] not in (1, batch):
                raise UserError(f"text context must be (B={batch}, L, {d}), got {tuple(c.shape)}")
            if c.shape[1] <= self.config.clause_tokens:
                raise UserError(f"this U-Net reads the last {self.config.clause_tokens} rows of each text context as "
                                f"clause tokens; a context of {c.shape[1]} rows has no text tokens left (text "
                                "encoders need clause_tokens in model_index.json)")
            c = c.expand(batch, -1, -1) if c.shape[0] == 1 else c
            out.append(c)  # per video: attention regroups the frames' tokens (see Attention.forward)
        return out

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor | Sequence[torch.Tensor],
        use_temporal: bool = True,
    ) -> torch.Tensor:
        """Predict noise / velocity.

        sample: (B, C, T, H, W) video latents or (B, C, H, W) images; C = latent channels, or 2C+1 with
        the conditioning latent and mask. timestep: scalar or (B,). encoder_hidden_states: one (B, L, D)
        tensor per text context. use_temporal=False runs the network as the text-to-image model (frames
        independent).
        """
        cfg = self.config
        is_image = sample.ndim == 4
        if is_image:
            sample = sample.unsqueeze(2)
        if sample.ndim != 5:
            raise UserError(f"U-Net input must be (B, C, T, H, W) or (B, C, H, W), got {tuple(sample.shape)}")
        b, c = sample.shape[:2]
        C = cfg.latent_channels
        if c not in (C, 2 * C + 1) or (c == 2 * C + 1 and self.conv_in_cond is None):
            allowed = f"{C} or {2 * C + 1}" if self.conv_in_cond is not None else f"{C}"
            raise UserError(f"U-Net input has {c} channels; this model takes {allowed}")
        timestep = torch.as_tensor(timestep, device=sample.device)
        timestep = timestep.expand(b) if timestep.ndim == 0 else timestep
        contexts = self._checked_contexts(encoder_hidden_states, b)
        use_temporal = bool(use_temporal)
        graphs = self._cuda_graphs
        if graphs is not None and sample.is_cuda and not torch.is_grad_enabled():
            out = graphs((use_temporal,), [sample, timestep, *contexts], context=torch.is_autocast_enabled("cuda"))
        else:
            out = self._forward_tensors(use_temporal, sample, timestep, *contexts)
        return out[:, :, 0] if is_image else out

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

    def _network(self, use_temporal: bool, sample: torch.Tensor, timestep: torch.Tensor, contexts: list[torch.Tensor]) -> torch.Tensor:
        cfg = self.config
        b, c, t, h, w = sample.shape
        if self.channels_last:  # one copy straight into (B*T, H, W, C) memory
            frames = sample.permute(0, 2, 3, 4, 1).reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        else:
            frames = sample.transpose(1, 2).reshape(b * t, c, h, w)
        temb = sinusoidal_embedding(timestep, cfg.block_out_channels[0], cfg.flip_sin_to_cos, cfg.freq_shift)
        temb = self.time_embedding(temb.to(self.conv_in.weight.dtype))
        if t > 1:  # one row per frame (b, t order); expand + reshape: no host-side repeat counts
            temb = temb[:, None].expand(b, t, temb.shape[-1]).reshape(b * t, temb.shape[-1])
        layers = cfg.transformer_layers_per_block
        contexts = contexts if len(contexts) == layers else contexts * layers

        heads = self._compiled_heads or (self._input_head, self._output_head)
        h_ = heads[0](frames, t, use_temporal)
        skips = [h_]
        for block in self.down_blocks:
            h_, block_skips = self._run(block, h_, temb, contexts, t, use_temporal)
            skips.extend(block_skips)
        h_ = self._run(self.mid_block, h_, temb, contexts, t, use_temporal)
        for block in self.up_blocks:
            n = len(block.resnets)
            block_skips, skips = skips[-n:], skips[:-n]
            size = tuple(skips[-1].shape[-2:]) if skips else None
            h_ = self._run(block, h_, block_skips, temb, contexts, t, use_temporal, size)
        h_ = heads[1](h_)
        return h_.view(b, t, -1, h, w).transpose(1, 2)

    def _input_head(self, frames: torch.Tensor, num_frames: int, use_temporal: bool) -> torch.Tensor:
        C = self.config.latent_channels
        h = self.conv_in(frames[:, :C])
        if frames.shape[1] > C:
            h = h + self.conv_in_cond(frames[:, C:])
        if use_temporal and self.temporal_conv_in is not None:
            h = self.temporal_conv_in(h, num_frames)
        return h

    def _output_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.conv_norm_out(h)))

    # Weight files (see emu_video.models.serialization) ---------------------------------------------------
    def save_pretrained(self, folder, dtype: torch.dtype | None = None):
        from emu_video.models import serialization

        return serialization.save_pretrained(self, folder, dtype)

    @classmethod
    def from_pretrained(cls, folder, device=None, dtype: torch.dtype | None = None) -> VideoUNet:
        from emu_video.models import serialization

        return serialization.from_pretrained(folder, device, dtype)

    def save_video_weights(self, path, dtype: torch.dtype | None = None):
        from emu_video.models import serialization

        return serialization.save_video_weights(self, path, dtype)

    def load_video_weights(self, path) -> None:
        from emu_video.models import serialization

        serialization.load_video_weights(self, path)
