"""The trainer's step as one recorded CUDA graph (`train.cuda_graph`).

What the eager step does with host decisions, the recorded step does on the GPU: the loss or gradient norm
being NaN/Inf sets a flag tensor that fused AdamW reads (`found_inf`: the update and its step count are
skipped) and that zeroes the EMA's weight. The learning rate and the EMA weight live in tensors filled
before each replay, so warm-ups go on as in eager steps. The host reads the loss, the gradient norm and the
flag after the step, as the eager step does, for its logs and its NaN-streak stop.
"""

from __future__ import annotations

import torch

from emu_video.training.ema import EMA
from emu_video.training.graphed_step import GraphedTrainStep
from emu_video.training.tasks import Drawn, Task


def flatten(drawn: Drawn) -> list[torch.Tensor]:
    """The tensors of `drawn` in key order (lists in place)."""
    out = []
    for key in sorted(drawn):
        value = drawn[key]
        out.extend(value if isinstance(value, (list, tuple)) else [value])
    return out


def static_copy(drawn: Drawn) -> Drawn:
    return {k: [t.clone() for t in v] if isinstance(v, (list, tuple)) else v.clone() for k, v in drawn.items()}


class GraphedUpdate:
    """Loss, backward, gradient clipping, AdamW and EMA of one micro-batch, replayed from a CUDA graph.

    `optimizer` must be fused AdamW (it honours `found_inf`) whose learning rate is a tensor; on a GPU it
    must be capturable. Without CUDA the same step runs eagerly.
    """

    def __init__(self, task: Task, params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer, ema: EMA,
                 max_grad_norm: float, warmup: int):
        if not all(g.get("fused") and torch.is_tensor(g["lr"]) for g in optimizer.param_groups):
            raise ValueError("the recorded step needs fused AdamW with a tensor learning rate")
        self.task, self.params, self.optimizer, self.ema = task, params, optimizer, ema
        self.max_grad_norm = max_grad_norm
        self.warmup = warmup
        device = params[0].device
        self.found_inf = torch.zeros((), device=device)
        optimizer.found_inf = self.found_inf  # read by fused AdamW at every step, recorded or not
        self.ema_weight = torch.zeros((), device=device)
        self.static: Drawn | None = None
        self.graphed: GraphedTrainStep | None = None
        task.autocast_cache = False

    @property
    def recorded(self) -> bool:
        return self.graphed is not None and self.graphed.recorded

    def _step(self) -> torch.Tensor:
        loss = self.task.loss_from(self.static)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        loss = loss.detach().float()
        bad = (~(torch.isfinite(loss) & torch.isfinite(grad_norm))).float()
        self.found_inf.copy_(bad)
        self.optimizer.step()
        self.ema.update_weighted(self.ema_weight * (1.0 - bad))
        return torch.stack([loss, grad_norm.float(), bad])

    def __call__(self, drawn: Drawn, ema_weight: float) -> tuple[float, float, bool]:
        """Train on `drawn` (this step's tensors from `Task.draw`); returns (loss, gradient norm, skipped)."""
        if self.graphed is None:
            self.static = static_copy(drawn)
            self.graphed = GraphedTrainStep(self._step, self.optimizer, flatten(self.static), self.warmup)
        self.ema_weight.fill_(ema_weight)
        loss, grad_norm, bad = self.graphed(*flatten(drawn)).tolist()
        return loss, grad_norm, bad > 0
