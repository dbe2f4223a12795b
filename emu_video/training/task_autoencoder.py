"""The autoencoder stage: a diffusers AutoencoderKL trained on images / video frames.

Frames may be cut to random square crops (`autoencoder.crop`) before the loss. Loss: l1_weight * |x - x̂| +
l2_weight * (x - x̂)² (weighted means over pixels: 1 + foreground_weight for pixels unlike their image's median
colour, 1 elsewhere) + kl_weight * KL(q(z|x) || N(0, I))
(summed over the latent, averaged over the batch). No adversarial or perceptual terms. The exported
`vae/` folder carries a `scaling_factor` of 1 / std of its latents on training data, as diffusion expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from emu_video.data.frames import model_pixels
from emu_video.training.export import staged_folder
from emu_video.training.tasks import Task
from emu_video.training.train_state import SampleRandom


class _ReconstructWithKL(nn.Module):
    """One forward through the wrapper (so DDP/FSDP see it): reconstruction and per-sample KL."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * noise.to(posterior.mean.dtype)
        return self.vae.decode(z).sample, posterior.kl()


def random_crops(x: torch.Tensor, side: int, rng: SampleRandom) -> torch.Tensor:
    """One random side x side crop of each (3, H, W) image of the batch (the frames of a sample draw from that
    sample's stream); the batch itself when side is 0 or the whole frame."""
    b, _, h, w = x.shape
    if side <= 0 or (side >= h and side >= w):
        return x
    top = rng.randint(0, h - side + 1, b).tolist()
    left = rng.randint(0, w - side + 1, b).tolist()
    return torch.stack([x[i, :, t : t + side, l : l + side] for i, (t, l) in enumerate(zip(top, left))])


def foreground_weights(x: torch.Tensor, weight: float, tolerance: float = 0.1) -> torch.Tensor | None:
    """(B, 1, H, W) pixel weights: 1 + weight where a pixel differs from its image's per-channel median colour
    by more than `tolerance` (in [-1, 1] units) in any channel, 1 elsewhere; None when weight is 0."""
    if weight <= 0:
        return None
    median = x.flatten(2).median(dim=2).values[:, :, None, None]
    fg = ((x - median).abs() > tolerance).any(dim=1, keepdim=True)
    return 1.0 + weight * fg.float()


def new_autoencoder(cfg):
    from diffusers import AutoencoderKL

    a = cfg.autoencoder
    if a.init:
        from emu_video.errors import UserError

        if not (Path(a.init) / "config.json").is_file():
            raise UserError(f"autoencoder.init={a.init} is not an AutoencoderKL folder")
        return AutoencoderKL.from_pretrained(a.init, local_files_only=True, use_safetensors=True)
    torch.manual_seed(cfg.train.seed)
    n = len(a.block_out_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(a.block_out_channels),
        layers_per_block=a.layers_per_block, latent_channels=a.latent_channels, norm_num_groups=a.norm_num_groups,
        sample_size=cfg.data.resolution,
    )


class AutoencoderTask(Task):
    def __init__(self, cfg, device, autocast_dtype):
        super().__init__(cfg, device, autocast_dtype)
        self.vae = new_autoencoder(cfg).float()
        self.vae.train().requires_grad_(True)
        if cfg.train.gradient_checkpointing:
            self.vae.enable_gradient_checkpointing()
        self.core = _ReconstructWithKL(self.vae)
        self.downscale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self._recent: torch.Tensor | None = None

    def shard_units(self):
        return [*self.vae.encoder.down_blocks, *self.vae.decoder.up_blocks]

    def draw(self, batch: dict, rng: SampleRandom) -> dict:
        x = model_pixels(batch["pixels"].to(self.device, non_blocking=True))
        if x.ndim == 5:  # (B, 3, T, H, W) clips: their frames
            x = x.transpose(1, 2).flatten(0, 1)
        x = random_crops(x, self.cfg.autoencoder.crop, rng)
        self._recent = x[:8].detach().cpu()
        b, _, h, w = x.shape
        noise = self.randn((b, self.vae.config.latent_channels, h // self.downscale, w // self.downscale), rng)
        return {"pixels": x, "noise": noise}

    def loss_from(self, d: dict) -> torch.Tensor:
        x, noise = d["pixels"], d["noise"]
        with self.autocast():
            recon, kl = self.net(x, noise)
        a = self.cfg.autoencoder
        err = recon.float() - x
        w = foreground_weights(x, a.foreground_weight)
        rec = a.l1_weight * err.abs() + a.l2_weight * err.square()
        rec = rec.mean() if w is None else (rec * w).sum() / (w.sum() * x.shape[1])
        return rec + a.kl_weight * kl.float().mean()

    @torch.no_grad()
    def _scaling_factor(self, vae) -> float:
        if self._recent is None:
            return float(vae.config.scaling_factor)
        z = vae.encode(self._recent.to(next(vae.parameters()).device)).latent_dist.mean
        std = float(z.float().std())
        return 1.0 / std if std > 1e-6 else 1.0

    def _vae_with(self, weights: dict[str, torch.Tensor]):
        vae = new_autoencoder(self.cfg).float()
        own = vae.state_dict()
        with torch.no_grad():
            for name, w in weights.items():
                own[name.removeprefix("vae.")].copy_(w)
        return vae.eval()

    def export(self, model_dir: Path, weights: dict[str, torch.Tensor]) -> None:
        vae = self._vae_with(weights)
        vae.register_to_config(scaling_factor=self._scaling_factor(vae))
        with staged_folder(model_dir) as dst:
            vae.to(self.cfg.export_dtype).save_pretrained(dst / "vae", safe_serialization=True)

    def sample(self, model_dir: Path, out_stem: Path, prompts: list[str], steps: int, seed: int) -> list[Path]:
        """Inputs (top row) over their reconstructions (bottom row), as a PNG."""
        from emu_video.io.video import write_image
        from emu_video.models.autoencoder import FrameAutoencoder

        if self._recent is None:
            return []
        ae = FrameAutoencoder.from_pretrained(model_dir / "vae")
        x = self._recent
        y = ae.decode(ae.encode(x))
        grid = torch.cat([torch.cat(list(x), dim=2), torch.cat(list(y), dim=2)], dim=1)
        img = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        return [write_image(out_stem.with_name(out_stem.name + ".png"), np.ascontiguousarray(img))]
