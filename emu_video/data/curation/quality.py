"""CLIP score (first frame vs caption) and aesthetic score (first frame), from local weights only.

The paper keeps clips whose CLIP similarity of the first frame and the text exceeds 0.25 (cosine similarity
of the projected embeddings) and whose aesthetic score exceeds 5.7 (LAION's predictor on CLIP ViT-L/14
image embeddings: give a ViT-L/14 folder with --clip for the aesthetic score to mean what it does there).
A filter whose weights were not given is off, said once; one whose weights were named but are missing fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emu_video.errors import UserError


@dataclass
class QualityModels:
    clip: object | None = None  # emu_video.evaluation.clip.ClipScorer
    aesthetic: object | None = None  # AestheticPredictor
    notes: list[str] = field(default_factory=list)  # one line per filter that is off, and why

    @property
    def active(self) -> bool:
        return self.clip is not None


def load_quality_models(clip_path: str | None, aesthetic_path: str | None, device: str = "cpu",
                        dtype: torch.dtype = torch.float32) -> QualityModels:
    """Load what was given. A path that was given but does not exist is a UserError."""
    models = QualityModels()
    if aesthetic_path and not clip_path:
        raise UserError("the aesthetic score needs CLIP ViT-L/14 image embeddings: give --clip DIR as well")
    if clip_path:
        if not Path(clip_path).exists():
            raise UserError(f"CLIP model not found: {clip_path}")
        from emu_video.evaluation.clip import load_clip

        models.clip = load_clip(clip_path, device, dtype)
    else:
        models.notes.append("CLIP score filter off: no CLIP model given (--clip DIR, a transformers CLIP folder)")
    if aesthetic_path:
        from emu_video.data.curation.aesthetic import load_aesthetic

        models.aesthetic = load_aesthetic(aesthetic_path).to(device)
        dim = int(models.clip.model.config.projection_dim)
        if dim != models.aesthetic.embed_dim:
            raise UserError(f"the aesthetic predictor takes {models.aesthetic.embed_dim}-d CLIP ViT-L/14 image "
                            f"embeddings; the CLIP model at {clip_path} gives {dim}-d: give a ViT-L/14 with --clip")
    else:
        models.notes.append("aesthetic filter off: no predictor given (--aesthetic FILE, LAION's "
                            "sac+logos+ava1-l14-linearMSE.pth)")
    return models


def _image_embeddings(clip, frames: list[np.ndarray]) -> torch.Tensor:
    """CLIP image embeddings of frames of any sizes (batched by size), in the order given."""
    groups: dict[tuple, list[int]] = {}
    for i, frame in enumerate(frames):
        groups.setdefault(frame.shape, []).append(i)
    out = [None] * len(frames)
    for indices in groups.values():
        batch = torch.from_numpy(np.stack([frames[i] for i in indices]))
        for i, emb in zip(indices, clip.image_embeddings(batch)):
            out[i] = emb
    return torch.stack(out).float()


def score_first_frames(models: QualityModels, frames: list[np.ndarray], captions: list[str]) -> list[dict]:
    """{"clip_score": ..., "aesthetic": ...} per frame (None for an off filter)."""
    out = [{"clip_score": None, "aesthetic": None} for _ in frames]
    if not frames or models.clip is None:
        return out
    images = _image_embeddings(models.clip, frames)
    texts = models.clip.text_embeddings(captions).to(images.device)  # both L2-normalised
    sims = (images * texts).sum(-1).cpu().tolist()
    aesthetic = [None] * len(frames)
    if models.aesthetic is not None:
        if images.shape[-1] != models.aesthetic.embed_dim:
            raise UserError(f"the aesthetic predictor takes {models.aesthetic.embed_dim}-d CLIP ViT-L/14 image "
                            f"embeddings; the CLIP model gives {images.shape[-1]}-d: give a ViT-L/14 with --clip")
        param = next(models.aesthetic.parameters())
        aesthetic = models.aesthetic(images.to(param.device)).cpu().tolist()
    for row, sim, aes in zip(out, sims, aesthetic):
        row["clip_score"] = round(float(sim), 6)
        row["aesthetic"] = None if aes is None else round(float(aes), 6)
    return out
