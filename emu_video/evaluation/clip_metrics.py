"""CLIP metrics on decoded videos (a `ClipScorer` from `emu_video.evaluation.clip`).

- CLIPSIM: mean cosine between each frame and the video's prompt, x1 (MSR-VTT numbers such as 0.3072).
- The paper's image-to-video metrics (App. Table 6, after Gen-1), reported x100 as the paper does:
  frame consistency = mean cosine between the CLIP embeddings of consecutive frames; image similarity = mean
  cosine between the conditioning image and each frame; text consistency = mean frame-to-prompt cosine.
"""

from __future__ import annotations

import numpy as np
import torch

from emu_video.evaluation.clip import ClipScorer


def video_scores(scorer: ClipScorer, frames: np.ndarray, prompt: str | None = None,
                 image: np.ndarray | None = None) -> dict[str, float]:
    """Every CLIP metric one video supports, from one pass of its frames through the image tower."""
    img = scorer.image_embeddings(torch.from_numpy(np.ascontiguousarray(frames)))
    out: dict[str, float] = {}
    if img.shape[0] > 1:
        out["frame_consistency"] = 100.0 * float((img[1:] * img[:-1]).sum(-1).mean())
    if prompt is not None:
        out["clipsim"] = float((img @ scorer.text_embeddings([prompt])[0]).mean())
        out["text_consistency"] = 100.0 * out["clipsim"]
    if image is not None:
        cond = scorer.image_embeddings(torch.from_numpy(np.ascontiguousarray(image[None])))[0]
        out["image_similarity"] = 100.0 * float((img @ cond).mean())
    return out


def clipsim(scorer: ClipScorer, frames: np.ndarray, prompt: str) -> float:
    return video_scores(scorer, frames, prompt)["clipsim"]
