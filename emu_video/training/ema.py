"""Exponential moving average of the trainable weights (kept in float32, sharded like the weights)."""

from __future__ import annotations

import torch


class EMA:
    """`shadow = d * shadow + (1 - d) * weight` after every optimizer step, with d = decay, or with
    `warmup` d = min(decay, (1 + step) / (10 + step)) so that short runs are not dominated by the start."""

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], decay: float, warmup: bool = True):
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.shadow = [p.detach().clone().float() for p in self.params] if self.enabled else []

    @property
    def enabled(self) -> bool:
        return self.decay > 0

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1.0 + step) / (10.0 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, step: int = 10**9) -> None:
        self.update_weighted(1.0 - self.decay_at(step))

    @torch.no_grad()
    def update_weighted(self, weight: float | torch.Tensor) -> None:
        """`shadow += weight * (live weight - shadow)`; `weight` may be a 0-d tensor on the weights' device (read
        when the update runs, as a recorded CUDA graph needs)."""
        if not self.enabled:
            return
        live = [p.detach() for p in self.params]
        if not all(p.dtype == s.dtype and p.device == s.device for p, s in zip(live, self.shadow)):
            live = [p.to(s) for p, s in zip(live, self.shadow)]
        if torch.is_tensor(weight):  # foreach lerp takes no tensor weight (it would read it on the host)
            step = torch._foreach_sub(live, self.shadow)
            torch._foreach_mul_(step, weight)
            torch._foreach_add_(self.shadow, step)
        else:
            torch._foreach_lerp_(self.shadow, live, weight)  # one fused launch instead of one per tensor

    def named_tensors(self) -> list[tuple[str, torch.Tensor]]:
        """The averaged weights (or the live weights when the EMA is off), possibly sharded."""
        return list(zip(self.names, self.shadow if self.enabled else [p.detach() for p in self.params]))

    @torch.no_grad()
    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        if not self.enabled:
            return
        for name, s in zip(self.names, self.shadow):
            s.copy_(tensors[name])
