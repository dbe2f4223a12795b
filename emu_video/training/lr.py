"""The learning-rate schedule of every stage (App. Table 3): constant after a linear warm-up."""

from __future__ import annotations


def warmup_constant(step: int, peak: float, warmup_steps: int) -> float:
    """LR of optimizer step `step` (0-based): peak * (step + 1) / warmup during the warm-up, then peak.

    A pure function of the step, so a resumed run needs no scheduler state beyond the step count.
    """
    if warmup_steps <= 0:
        return float(peak)
    return float(peak) * min(1.0, (step + 1) / warmup_steps)


def set_lr(optimizer, lr: float) -> None:
    """Set every group's rate; a tensor rate (read by a recorded CUDA graph) is filled in place."""
    for group in optimizer.param_groups:
        if hasattr(group["lr"], "fill_"):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
