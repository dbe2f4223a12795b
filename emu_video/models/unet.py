"""The factorized spatio-temporal U-Net: one network that is the text-to-image model without its temporal
layers and the image-conditioned video model with them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from emu_video.errors import UserError
from emu_video.models.blocks import DownBlock, MidBlock, UpBlock
from emu_video.models.config import VideoUNetConfig
from emu_video.models.deep_cache import DeepFeatureCache
from emu_video.models.embeddings import TimestepEmbedding, sinusoidal_embedding
from emu_video.models.fast import FastPathsMixin
from emu_video.models.naming import VIDEO_PARAM_MARKERS, is_video_param
from emu_video.models.serialization import PretrainedMixin
from emu_video.models.temporal import TemporalConv

__all__ = ["VIDEO_PARAM_MARKERS", "VideoUNet", "is_video_param"]


class VideoUNet(PretrainedMixin, FastPathsMixin, nn.Module):
    """Latent-diffusion U-Net over (B, C, T, H, W) video latents (or (B, C, H, W) images).

    Input channels: the noisy latent (C), optionally followed by the conditioning latent zero-padded over
    time (C) and the binary mask (1): `2C+1` in all. The C+1 conditioning channels go through
    `conv_in_cond`, a zero-initialised, bias-free convolution added to `conv_in` — the same as one
    conv over the concatenation, with the pretrained kernel kept under its own name.

    This module holds the network; its weight files come from `PretrainedMixin` (serialization.py:
    `from_pretrained`, `save_pretrained`, `save_video_weights`, `load_video_weights`, `from_diffusers`) and
    its speed settings and the way a forward runs under them from `FastPathsMixin` (fast.py:
    `set_fast_paths`, `to_channels_last`, `set_compile`, `enable_cuda_graphs`, `optimize_for_inference`...).
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
        self._init_fast_paths()  # speed settings (see FastPathsMixin.optimize_for_inference)

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
        cache: DeepFeatureCache | None = None,
    ) -> torch.Tensor:
        """Predict noise / velocity.

        sample: (B, C, T, H, W) video latents or (B, C, H, W) images; C = latent channels, or 2C+1 with
        the conditioning latent and mask. timestep: scalar or (B,). encoder_hidden_states: one (B, L, D)
        tensor per text context. use_temporal=False runs the network as the text-to-image model (frames
        independent). `cache`: a `DeepFeatureCache` (deep_cache.py) whose deep feature a shallow pass reuses
        and a full pass refreshes; None runs the whole network.
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
        out = self._execute(bool(use_temporal), sample, timestep, contexts, cache)  # CUDA graphs, compiled or eager
        return out[:, :, 0] if is_image else out

    def _network(self, use_temporal: bool, sample: torch.Tensor, timestep: torch.Tensor, contexts: list[torch.Tensor],
                 cache: DeepFeatureCache | None = None) -> torch.Tensor:
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

        heads = self._heads()  # compiled with set_compile("blocks"), else _input_head and _output_head
        h_ = heads[0](frames, t, use_temporal)
        skips = [h_]
        cache = cache if len(self.down_blocks) > 1 else None  # one level: nothing deep to reuse
        if cache is not None and cache.usable(b * t, h, w):  # shallow pass: the first level only
            h_, block_skips = self._run(self.down_blocks[0], h_, temb, contexts, t, use_temporal, False)
            skips.extend(block_skips)
            h_ = self._run(self.up_blocks[-1], cache.feature, skips, temb, contexts, t, use_temporal, None)
            cache.shallow_steps += 1
            return heads[1](h_).view(b, t, -1, h, w).transpose(1, 2)
        for block in self.down_blocks:
            h_, block_skips = self._run(block, h_, temb, contexts, t, use_temporal)
            skips.extend(block_skips)
        h_ = self._run(self.mid_block, h_, temb, contexts, t, use_temporal)
        for i, block in enumerate(self.up_blocks):
            if cache is not None and i == len(self.up_blocks) - 1:
                cache.store(h_)
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
