"""Names of the U-Net's parameter groups.

The network (unet.py) and its weight files (serialization.py) both need to tell the temporal ("video")
parameters from the spatial text-to-image ones; the naming lives here so that neither imports the other.
"""

from __future__ import annotations

# Parameters whose names contain one of these belong to the video model (trainable); the rest are the
# frozen spatial weights, named exactly as in diffusers' UNet2DConditionModel.
VIDEO_PARAM_MARKERS = ("temporal_", "conv_in_cond.")


def is_video_param(name: str) -> bool:
    """A temporal layer's or the conditioning input channels' parameter (saved in the video weights)."""
    return any(m in name for m in VIDEO_PARAM_MARKERS)


def is_clause_param(name: str) -> bool:
    """A parameter of the clause cross-attention (VideoUNetConfig.clause_tokens)."""
    return ".attn_clause." in name or ".norm_clause." in name
