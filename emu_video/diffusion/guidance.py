"""Classifier-free guidance, with one condition (text, for the first frame) or two (image then text).

The two-condition form is the paper's (App. Eq. 1), image first, then text:

    X~ = X(null) + w_img * (X(I) - X(null)) + w_txt * (X(I, p) - X(I))

w_img = w_txt = 1 gives X(I, p); w_img = w_txt = 0 gives X(null). The paper samples videos with
w_img = 2.0, w_txt = 7.5.

The three network passes can run as one batched forward. The order along the batch is always
**[null, image, full]**: chunk 0 has neither condition, chunk 1 the image only, chunk 2 image and text.
:func:`repeat_for_guidance` builds the copies; :func:`split_guidance` returns the chunks in that order.
"""

from __future__ import annotations

import torch

__all__ = [
    "GUIDANCE_ORDER",
    "classifier_free_guidance",
    "repeat_for_guidance",
    "split_guidance",
    "two_condition_guidance",
]

GUIDANCE_ORDER = ("null", "image", "full")


def classifier_free_guidance(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + scale * (cond - uncond). scale = 1 gives cond, scale = 0 gives uncond."""
    return uncond + scale * (cond - uncond)


def two_condition_guidance(
    x_null: torch.Tensor,
    x_image: torch.Tensor,
    x_full: torch.Tensor,
    w_img: float = 2.0,
    w_txt: float = 7.5,
) -> torch.Tensor:
    """X(null) + w_img * (X(I) - X(null)) + w_txt * (X(I, p) - X(I)) (the paper's App. Eq. 1)."""
    return x_null + w_img * (x_image - x_null) + w_txt * (x_full - x_image)


def repeat_for_guidance(x: torch.Tensor, n: int = 3) -> torch.Tensor:
    """Concatenate ``n`` copies of ``x`` along the batch dim: (B, ...) -> (n * B, ...).

    For two-condition guidance (n = 3) the copies are, in order, [null, image, full]; the caller puts
    the right conditioning into each chunk.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return torch.cat([x] * n, dim=0)


def split_guidance(output: torch.Tensor, n: int = 3) -> tuple[torch.Tensor, ...]:
    """Split a batched output (n * B, ...) back into ``n`` chunks of B, in batch order.

    For n = 3 that is (x_null, x_image, x_full), ready for :func:`two_condition_guidance`; for n = 2,
    (uncond, cond) for :func:`classifier_free_guidance`.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if output.shape[0] % n:
        raise ValueError(f"batch of {output.shape[0]} cannot be split into {n} equal guidance chunks")
    return tuple(output.chunk(n, dim=0))
