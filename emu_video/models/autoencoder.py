"""The image autoencoder (diffusers `AutoencoderKL`) applied to videos frame by frame, in chunks."""

from __future__ import annotations

from pathlib import Path

import torch

from emu_video.errors import UserError


class FrameAutoencoder:
    """Encode/decode (B, 3, T, H, W) videos in [-1, 1] to scaled (B, C, T, h, w) latents and back.

    Frames go through the VAE `chunk_size` at a time, so peak memory does not grow with the number of frames.
    """

    def __init__(self, vae, chunk_size: int = 8):
        self.vae = vae.eval().requires_grad_(False)
        self.chunk_size = max(1, int(chunk_size))
        self.memory_format = torch.contiguous_format
        self.compiled = False
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)
        self.shift_factor = float(getattr(vae.config, "shift_factor", 0.0) or 0.0)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device=None, dtype=None, chunk_size: int = 8,
                        native: bool = True) -> FrameAutoencoder:
        """A diffusers `AutoencoderKL` folder. With `native` (default) the network is built by
        `kl_autoencoder.KLAutoencoder` (same function, no diffusers import: seconds less start-up) when the
        folder is one it represents; otherwise, and with `native=False`, diffusers loads it."""
        folder = Path(folder)
        if not (folder / "config.json").exists():
            raise UserError(f"no autoencoder (vae/config.json) in {folder.parent}")
        vae = cls._native(folder) if native else None
        if vae is None:
            from diffusers import AutoencoderKL

            from emu_video.models._quiet import quiet_libraries

            quiet_libraries("diffusers")
            try:
                vae = AutoencoderKL.from_pretrained(folder, local_files_only=True, use_safetensors=True)
            except (OSError, ValueError, RuntimeError) as exc:
                raise UserError(f"cannot load the autoencoder from {folder}: {exc}") from exc
        return cls(vae.to(device=device or "cpu", dtype=dtype or torch.float32), chunk_size)

    @staticmethod
    def _native(folder: Path):
        """The folder's autoencoder built without diffusers, or None when it needs diffusers."""
        from emu_video.io.jsonfile import read_json
        from emu_video.models.kl_autoencoder import KLAutoencoder, supports

        if not (folder / "diffusion_pytorch_model.safetensors").exists() or not supports(
                read_json(folder / "config.json", "autoencoder config")):
            return None
        try:
            return KLAutoencoder.from_folder(folder)
        except (KeyError, RuntimeError, ValueError):  # names or shapes it does not know: diffusers reads it
            return None

    def to_channels_last(self, enabled: bool = True) -> FrameAutoencoder:
        """Convolutions on (N, H, W, C) frames (cuDNN's NHWC kernels on GPUs): weights and each chunk."""
        self.memory_format = torch.channels_last if enabled else torch.contiguous_format
        self.vae.to(memory_format=self.memory_format)
        return self

    def set_compile(self, enabled: bool = True, backend: str = "inductor") -> FrameAutoencoder:
        """torch.compile the encoder and the decoder (static shapes; each compiles on its first call).

        The fused kernels matter most in channels-last: eager GroupNorm takes NCHW only, so every one of
        the VAE's norms would copy its (large) activation out of channels-last and back."""
        from emu_video.models.fast import compile_regions, uncompile_regions

        parts = [self.vae.encoder, self.vae.decoder]
        uncompile_regions(parts)
        if enabled:
            compile_regions(parts, dynamic=False, backend=backend)
        self.compiled = bool(enabled)
        return self

    def optimize_for_inference(self, compile: bool | None = None) -> FrameAutoencoder:
        """Channels-last frames and compiled encoder/decoder (`compile`, default: on a GPU). On the CPU it
        stays as it is: eager GroupNorm would copy channels-last activations out and back."""
        on_cuda = self.device.type == "cuda"
        compile = on_cuda if compile is None else compile
        self.to_channels_last(compile)
        return self.set_compile(compile)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @staticmethod
    def _frames(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int], bool]:
        if x.ndim == 4:
            return x, (x.shape[0], 1), True
        if x.ndim != 5:
            raise UserError(f"expected (B, C, T, H, W) or (B, C, H, W), got {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        return x.transpose(1, 2).reshape(b * t, c, h, w), (b, t), False

    @staticmethod
    def _unframes(y: torch.Tensor, bt: tuple[int, int], is_image: bool) -> torch.Tensor:
        if is_image:
            return y
        b, t = bt
        return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)

    @torch.no_grad()
    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None, sample: bool = False) -> torch.Tensor:
        """[-1, 1] pixels -> scaled latents (the posterior mean, or a sample when `sample`)."""
        frames, bt, is_image = self._frames(video)
        out = []
        for chunk in frames.split(self.chunk_size):
            dist = self.vae.encode(chunk.to(self.device, self.dtype, memory_format=self.memory_format)).latent_dist
            z = dist.sample(generator) if sample else dist.mean
            out.append((z - self.shift_factor) * self.scaling_factor)
        return self._unframes(torch.cat(out), bt, is_image)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, output_device: torch.device | str | None = None) -> torch.Tensor:
        """Scaled latents -> [-1, 1] pixels (float32), decoded a chunk of frames at a time."""
        frames, bt, is_image = self._frames(latents)
        out = []
        for chunk in frames.split(self.chunk_size):
            z = chunk.to(self.device, self.dtype, memory_format=self.memory_format) / self.scaling_factor + self.shift_factor
            out.append(self.vae.decode(z).sample.float().clamp(-1, 1).to(output_device or "cpu"))
        return self._unframes(torch.cat(out), bt, is_image)
