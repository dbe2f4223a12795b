"""Inputs and weight changes shared by the U-Net tests (tiny_config: two text contexts, dims 24 and 40)."""

import torch


def text_contexts(b: int = 2) -> list[torch.Tensor]:
    return [torch.randn(b, 5, 24), torch.randn(b, 3, 40)]


def perturb_video_layers(model) -> None:
    """Move the video layers away from their identity initialisation, as training would."""
    with torch.no_grad():
        for _, p in model.video_named_parameters():
            p.add_(torch.randn_like(p) * 0.1)
