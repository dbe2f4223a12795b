"""Batches to model inputs: VAE latents and text contexts, encoded live by the frozen encoders or read
from a precomputed cache (then the encoders are never loaded)."""

from __future__ import annotations

import torch

from emu_video.data.cache import CachedDataset
from emu_video.data.frames import model_pixels
from emu_video.errors import UserError
from emu_video.models.autoencoder import FrameAutoencoder
from emu_video.models.text_encoder import TextEncoder
from emu_video.training.model_setup import ModelSource, load_text_encoders


class DiffusionInputs:
    def __init__(self, device: torch.device, vae: FrameAutoencoder | None = None,
                 text_encoders: list[TextEncoder] | None = None, null: list[torch.Tensor] | None = None):
        self.device, self.vae, self.text_encoders = device, vae, text_encoders or []
        self._null = [n.to(device) for n in null] if null is not None else None

    @classmethod
    def live(cls, src: ModelSource, device: torch.device, dtype: torch.dtype, resolution: int = 512
             ) -> DiffusionInputs:
        # Frames per VAE call: about 4 Mpixels at a time (8 frames at 512px, 1024 at 64px).
        chunk = max(8, (1 << 22) // (resolution * resolution))
        vae = FrameAutoencoder.from_pretrained(src.vae_dir, device=device, dtype=dtype, chunk_size=chunk)
        return cls(device, vae, load_text_encoders(src.text_specs, device, dtype))

    @classmethod
    def cached(cls, dataset: CachedDataset, device: torch.device) -> DiffusionInputs:
        return cls(device, null=dataset.null_embeddings())

    @property
    def is_cached(self) -> bool:
        return self.vae is None

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(model_pixels(pixels.to(self.device, non_blocking=True), self.vae.dtype)).float()

    @torch.no_grad()
    def encode_text(self, captions: list[str]) -> list[torch.Tensor]:
        return [te(list(captions)).float() for te in self.text_encoders]

    def null(self) -> list[torch.Tensor]:
        if self._null is None:
            self._null = self.encode_text([""])
        return self._null

    def __call__(self, batch: dict) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if "latents" in batch:
            return batch["latents"].to(self.device).float(), [t.to(self.device).float() for t in batch["text"]]
        if self.vae is None:
            raise UserError("this run reads a latent cache but got a pixel batch")
        return self.encode_pixels(batch["pixels"]), self.encode_text(batch["caption"])


def check_cache(info: dict, kind: str, resolution: int, num_frames: int, fps: float) -> None:
    """Refuse a cache made for other clips than the stage trains on."""
    want = {"kind": kind, "resolution": resolution}
    if kind == "video":
        want.update(num_frames=num_frames, fps=float(fps))
    have = {k: info.get(k) for k in want}
    if kind == "video" and have.get("fps") is not None:
        have["fps"] = float(have["fps"])
    if have != want:
        raise UserError(f"the cache holds {have} but this stage trains on {want}; rebuild it with "
                        "`emu-video prepare-data --config STAGE --cache DIR`")
