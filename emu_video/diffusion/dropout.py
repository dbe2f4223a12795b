"""Condition dropout during training, so one network also learns X(null) and X(I) for guidance.

Per sample, one uniform draw u in [0, 1) picks exactly one of four mutually exclusive events:

    u < p_text                                -> drop the text only
    p_text <= u < p_text + p_image            -> drop the image only
    p_text + p_image <= u < p_text + p_image + p_both -> drop both
    otherwise                                 -> keep both

The paper does not give its rates; the defaults (0.1 each) are a common choice, not the paper's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import torch

__all__ = ["ConditionDropout", "apply_image_dropout", "apply_text_dropout"]

TextEmbeds = Union[torch.Tensor, Sequence[torch.Tensor]]


@dataclass
class ConditionDropout:
    """Probabilities of dropping the text only, the image only, or both (each in [0, 1], sum <= 1)."""

    p_text: float = 0.1
    p_image: float = 0.1
    p_both: float = 0.1

    def __post_init__(self) -> None:
        for name in ("p_text", "p_image", "p_both"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        total = self.p_text + self.p_image + self.p_both
        if total > 1.0 + 1e-12:
            raise ValueError(
                f"p_text + p_image + p_both must be <= 1 (the events are mutually exclusive), got {total}"
            )

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(drop_text, drop_image)``, two BoolTensors of shape ``(batch_size,)``.

        A "both" event sets both flags. Uses one uniform per sample, drawn on the generator's device.
        """
        draw_device = generator.device if generator is not None else device
        u = torch.rand(int(batch_size), generator=generator, device=draw_device, dtype=torch.float64)
        if device is not None:
            u = u.to(device)
        return self.flags(u)

    def flags(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(drop_text, drop_image)`` from one uniform in [0, 1) per sample (what :meth:`sample` draws)."""
        text_only = u < self.p_text
        image_only = (u >= self.p_text) & (u < self.p_text + self.p_image)
        both = (u >= self.p_text + self.p_image) & (u < self.p_text + self.p_image + self.p_both)
        return text_only | both, image_only | both


def _row_mask(flags: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    flags = flags.to(device=like.device, dtype=torch.bool)
    if flags.ndim != 1 or flags.shape[0] != like.shape[0]:
        raise ValueError(
            f"drop flags must have shape ({like.shape[0]},) to match the batch, got {tuple(flags.shape)}"
        )
    return flags.reshape(-1, *([1] * (like.ndim - 1)))


def _replace_rows(embeds: torch.Tensor, null: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    null = null.to(device=embeds.device, dtype=embeds.dtype)
    return torch.where(_row_mask(drop, embeds), null, embeds)


def apply_text_dropout(text_embeds: TextEmbeds, null_embeds: TextEmbeds, drop_text: torch.Tensor) -> TextEmbeds:
    """Replace the rows flagged in ``drop_text`` by the null (empty-prompt) embedding.

    ``text_embeds`` is a (B, L, D) tensor, or a list/tuple of them (one per text encoder, e.g. a
    768-dim and a 2048-dim context); ``null_embeds`` matches it (same container and order), each entry
    broadcastable to its counterpart, e.g. (1, L, D). Returns the same container type.
    """
    if isinstance(text_embeds, torch.Tensor):
        if not isinstance(null_embeds, torch.Tensor):
            raise TypeError("text_embeds is a tensor, so null_embeds must be a tensor too")
        return _replace_rows(text_embeds, null_embeds, drop_text)
    if isinstance(null_embeds, torch.Tensor) or len(null_embeds) != len(text_embeds):
        raise ValueError("null_embeds must be a sequence with one null embedding per text context")
    out = [_replace_rows(e, n, drop_text) for e, n in zip(text_embeds, null_embeds)]
    return tuple(out) if isinstance(text_embeds, tuple) else out


def apply_image_dropout(
    cond_latents: torch.Tensor, mask: torch.Tensor | None, drop_image: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Zero the image-conditioning latents and their frame mask for the rows flagged in ``drop_image``.

    ``cond_latents`` is e.g. (B, C, T, H, W), ``mask`` e.g. (B, 1, T, H, W) (or None). Returns the pair.
    """
    cond = torch.where(_row_mask(drop_image, cond_latents), torch.zeros_like(cond_latents), cond_latents)
    if mask is None:
        return cond, None
    return cond, torch.where(_row_mask(drop_image, mask), torch.zeros_like(mask), mask)
