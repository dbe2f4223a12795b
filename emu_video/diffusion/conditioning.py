"""Explicit conditioning inputs: known frames placed in a zero video plus a binary mask.

The same mechanism serves every layout (`layouts/`): image-to-video (the first frame is known), frame
interpolation (masked zero-interleaving of 8 frames into 37), extension (the first frames are the past
video), keyframes (first and last) and direct text-to-video (none). The U-Net input is
concat([noisy latents, conditioning latents, mask]) along channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def positions_slice(positions: Sequence[int]) -> slice | None:
    """Evenly spaced, increasing time `positions` as one strided slice; None for any other list. Indexing
    with a slice needs no index tensor, so no host-to-device copy."""
    positions = list(positions)
    k = len(positions)
    step = positions[1] - positions[0] if k > 1 else 1
    if k and step > 0 and positions == list(range(positions[0], positions[0] + step * k, step)):
        return slice(positions[0], positions[-1] + 1, step)
    return None


def place_frames(known: torch.Tensor, num_frames: int, positions: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Put `known` (B, C, K, h, w) at time `positions` (K of them) of a zero (B, C, T, h, w) video.

    Returns (conditioning latents, mask (B, 1, T, h, w) that is 1 at the known frames).
    """
    b, c, k, h, w = known.shape
    positions = list(positions)
    if len(positions) != k:
        raise ValueError(f"{k} known frames but {len(positions)} positions")
    if any(p < 0 or p >= num_frames for p in positions) or len(set(positions)) != k:
        raise ValueError(f"positions {positions} must be distinct and inside 0..{num_frames - 1}")
    cond = known.new_zeros(b, c, num_frames, h, w)
    mask = known.new_zeros(b, 1, num_frames, h, w)
    if not k:  # nothing known (direct text-to-video): the conditioning channels stay zero
        return cond, mask
    # Slices, not an index tensor: no host-to-device copy, so a recorded CUDA graph can hold this too.
    strided = positions_slice(positions)
    if strided is not None:  # one strided slice (every task's layout)
        where, frames = [strided], [slice(None)]
    else:
        where, frames = positions, range(k)
    for dst, src in zip(where, frames):
        cond[:, :, dst] = known[:, :, src]
        mask[:, :, dst] = 1
    return cond, mask


def interpolation_positions(num_inputs: int = 8, factor: int = 4, pad: int = 4) -> list[int]:
    """Where input frames land in the interpolated clip: 8 inputs, 3 new frames between pairs (factor 4) and
    4 beyond each end give positions 4, 8, ..., 32 of 37 frames."""
    return [pad + factor * i for i in range(num_inputs)]


def interpolation_length(num_inputs: int = 8, factor: int = 4, pad: int = 4) -> int:
    return factor * (num_inputs - 1) + 1 + 2 * pad


def stitch_plan(num_inputs: int, window: int = 8, factor: int = 4, pad: int = 4) -> list[tuple[int, int, int]]:
    """How to interpolate a long low-fps clip window by window and stitch the results, as the paper does.

    Returns (first input frame, keep_from, keep_to) per window: window w interpolates inputs
    [w*window, (w+1)*window) into `interpolation_length` frames of which [keep_from, keep_to) are kept.
    For 16 inputs: two windows of 37 frames, keeping 0..31 of the first (its last 5 overlap the next
    window) and 4..36 of the second: 32 + 33 = 65 frames, 4.06 s at 16 fps.
    """
    if num_inputs % window:
        raise ValueError(f"{num_inputs} frames do not split into windows of {window}")
    n = num_inputs // window
    length = interpolation_length(window, factor, pad)
    last_input = pad + factor * (window - 1)  # output index of each window's last input frame
    plan = []
    for w in range(n):
        keep_from = 0 if w == 0 else pad
        keep_to = length if w == n - 1 else last_input + factor - pad
        plan.append((w * window, keep_from, keep_to))
    return plan


def stitched_length(num_inputs: int, window: int = 8, factor: int = 4, pad: int = 4) -> int:
    return sum(b - a for _, a, b in stitch_plan(num_inputs, window, factor, pad))


def unet_input(noisy: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.cat([noisy, cond.to(noisy.dtype), mask.to(noisy.dtype)], dim=1)
