"""Classifier-free guidance as objects that own both the batching of the network passes and their combination.

A guidance names the passes it needs (each pass keeps or drops the text and the image condition), runs them
as one batched forward of a :class:`GuidedModel`, and combines the outputs:

* :class:`NoGuidance`              -- one pass with every condition: X(I, p)
* :class:`ClassifierFreeGuidance`  -- one condition, the text: X(∅) + w (X(p) − X(∅))  (the first frame, `direct`)
* :class:`TwoConditionGuidance`    -- the paper's App. Eq. 1, image first, then text:

      X~ = X(∅) + w_img (X(I) − X(∅)) + w_txt (X(I, p) − X(I))

  w_img = w_txt = 1 gives X(I, p) in a single pass; w_img = w_txt = 0 gives X(∅).

The passes go along the batch in the order the guidance lists them ([null, image, full] for two
conditions). The paper's weights are the constants below; a model folder's tuned values live in its
``model_index.json`` ("defaults").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = [
    "FULL",
    "GUIDANCE_ORDER",
    "IMAGE_ONLY",
    "NULL",
    "PAPER_IMAGE_SCALE",
    "PAPER_W_IMG",
    "PAPER_W_TXT",
    "TEXT_ONLY",
    "ClassifierFreeGuidance",
    "Guidance",
    "GuidedModel",
    "NoGuidance",
    "Pass",
    "TwoConditionGuidance",
    "classifier_free_guidance",
    "repeat_for_guidance",
    "split_guidance",
    "truncated_guidance",
    "two_condition_guidance",
]

TRUNCATION_KEEPS = ("cond", "text")  # what the steps after CFG truncation keep (see `truncated_guidance`)

PAPER_W_IMG = 2.0  # the paper's video sampling weights (App. Eq. 1)
PAPER_W_TXT = 7.5
PAPER_IMAGE_SCALE = 7.5  # guidance of the text-to-image step that draws the first frame


@dataclass(frozen=True)
class Pass:
    """One network pass of a guided step: which conditions it keeps."""

    text: bool
    image: bool


NULL = Pass(text=False, image=False)
IMAGE_ONLY = Pass(text=False, image=True)
TEXT_ONLY = Pass(text=True, image=False)
FULL = Pass(text=True, image=True)
GUIDANCE_ORDER = ("null", "image", "full")  # batch order of the two-condition passes


class GuidedModel(Protocol):
    """What a guidance needs of the network: the constant inputs of a pass, and one forward."""

    def pass_inputs(self, p: Pass) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """(conditioning channels to concatenate after the noisy latents, or None; text contexts) of pass `p`."""

    def __call__(self, sample: torch.Tensor, t: torch.Tensor, contexts: list[torch.Tensor]) -> torch.Tensor: ...


# The combinations, as pure functions ------------------------------------------------------------------------
def classifier_free_guidance(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + scale * (cond - uncond). scale = 1 gives cond, scale = 0 gives uncond."""
    return uncond + scale * (cond - uncond)


def two_condition_guidance(
    x_null: torch.Tensor,
    x_image: torch.Tensor,
    x_full: torch.Tensor,
    w_img: float = PAPER_W_IMG,
    w_txt: float = PAPER_W_TXT,
) -> torch.Tensor:
    """X(null) + w_img * (X(I) - X(null)) + w_txt * (X(I, p) - X(I)) (the paper's App. Eq. 1)."""
    return x_null + w_img * (x_image - x_null) + w_txt * (x_full - x_image)


def repeat_for_guidance(x: torch.Tensor, n: int = 3) -> torch.Tensor:
    """``n`` copies of ``x`` along the batch dim: (B, ...) -> (n * B, ...), one per pass."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return x if n == 1 else torch.cat([x] * n, dim=0)


def split_guidance(output: torch.Tensor, n: int = 3) -> tuple[torch.Tensor, ...]:
    """A batched output (n * B, ...) back into ``n`` chunks of B, in batch (pass) order."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if output.shape[0] % n:
        raise ValueError(f"batch of {output.shape[0]} cannot be split into {n} equal guidance chunks")
    return tuple(output.chunk(n, dim=0))


# The objects -----------------------------------------------------------------------------------------------
class Guidance:
    """Base class: `passes` lists the network passes, `combine` merges their outputs (in that order)."""

    def passes(self) -> tuple[Pass, ...]:
        raise NotImplementedError

    def combine(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def denoiser(self, model: GuidedModel) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """`fn(x_t, t)`: the guided model output. All passes run as one batched forward; the passes' constant
        inputs (conditioning channels, text contexts) are concatenated once and reused at every step."""
        passes = self.passes()
        n = len(passes)
        inputs = [model.pass_inputs(p) for p in passes]
        channels = [c for c, _ in inputs]
        if any(c is None for c in channels) and not all(c is None for c in channels):
            raise ValueError("either every pass or none has conditioning channels")
        fixed = None if channels[0] is None else (channels[0] if n == 1 else torch.cat(channels))
        contexts = [ctx[0] if n == 1 else torch.cat(ctx) for ctx in zip(*(c for _, c in inputs))]

        def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            sample = repeat_for_guidance(x, n)
            if fixed is not None:
                sample = torch.cat([sample, fixed.to(x.dtype)], dim=1)
            out = model(sample, t.reshape(1).expand(n * x.shape[0]), contexts)
            return out if n == 1 else self.combine(split_guidance(out, n))

        return fn


class NoGuidance(Guidance):
    """One pass with every condition."""

    def passes(self) -> tuple[Pass, ...]:
        return (FULL,)

    def combine(self, outputs):
        (out,) = outputs
        return out


@dataclass(frozen=True)
class ClassifierFreeGuidance(Guidance):
    """One condition, the text: X(∅) + scale (X(p) − X(∅)); the image condition, if any, is kept in both."""

    scale: float = PAPER_IMAGE_SCALE

    def passes(self) -> tuple[Pass, ...]:
        return (FULL,) if self.scale == 1.0 else (IMAGE_ONLY, FULL)

    def combine(self, outputs):
        if len(outputs) == 1:
            return outputs[0]
        uncond, cond = outputs
        return classifier_free_guidance(uncond, cond, self.scale)


@dataclass(frozen=True)
class TwoConditionGuidance(Guidance):
    """The paper's guidance over the image, then the text condition (App. Eq. 1)."""

    w_img: float = PAPER_W_IMG
    w_txt: float = PAPER_W_TXT

    def passes(self) -> tuple[Pass, ...]:
        return (FULL,) if self.w_img == 1.0 and self.w_txt == 1.0 else (NULL, IMAGE_ONLY, FULL)

    def combine(self, outputs):
        if len(outputs) == 1:
            return outputs[0]
        x_null, x_image, x_full = outputs
        return two_condition_guidance(x_null, x_image, x_full, self.w_img, self.w_txt)


def truncated_guidance(guidance: Guidance, keep: str = "cond") -> Guidance:
    """The guidance of the late steps under CFG truncation: fewer network passes per step.

    keep="cond": the fully conditioned pass alone, X(I, p) (1 pass instead of 3, or 2 for the first frame).
    keep="text": the unconditional pass is dropped but the text guidance stays, X(I) + w_txt (X(I, p) - X(I))
    (2 passes instead of 3; the two-condition formula with w_img = 1). One-condition guidance keeps both of
    its passes under "text".
    """
    if keep not in TRUNCATION_KEEPS:
        raise ValueError(f"keep must be one of {TRUNCATION_KEEPS}, got {keep!r}")
    if isinstance(guidance, NoGuidance) or len(guidance.passes()) == 1:
        return guidance
    if keep == "cond":
        return NoGuidance()
    if isinstance(guidance, TwoConditionGuidance):
        return ClassifierFreeGuidance(guidance.w_txt)
    return guidance
