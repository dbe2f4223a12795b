"""A whole training step (forward, backward, optimiser update) replayed from one CUDA graph.

A compiled U-Net's training step launches thousands of kernels from Python (the compiled regions' backward
wrappers launch one kernel at a time), so at moderate batch sizes the host, not the GPU, sets the step time.
Recording the step once and replaying it launches everything at once. The maths is unchanged: a replay runs
the kernels the recorded call ran, on the same memory.

The step function must read its data only from the static input tensors (new batches are copied into them
before each replay), must not synchronise with the host (no `.item()`, no data-dependent Python branches),
and must call `loss.backward()` and `optimizer.step()` itself. An optimiser that has the option (Adam,
AdamW, ...) must be made with `capturable=True` so that its step counter lives on the GPU. Gradients are set to None before recording, so
the recorded backward writes them afresh at every replay (no accumulation across steps).

Without CUDA the step simply runs eagerly, so the same code trains on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from emu_video.errors import UserError


def check_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Raise a clear error for an optimiser whose step cannot be recorded into a CUDA graph."""
    groups = optimizer.param_groups
    if any(g.get("capturable") is False for g in groups):  # optimisers without the option keep no host state
        raise UserError(
            f"{type(optimizer).__name__} must be made with capturable=True to be replayed from a CUDA graph "
            "(its step count has to live on the GPU)"
        )
    if any(g.get("differentiable", False) for g in groups):
        raise UserError("a differentiable optimiser cannot be replayed from a CUDA graph")


class GraphedTrainStep:
    """Calls `step_fn()` (forward, `loss.backward()`, `optimizer.step()`; returns the loss) through a CUDA graph.

    `inputs` are the static tensors `step_fn` reads. Each call copies the given new tensors into them (same
    shapes), runs the step, and returns the loss: a tensor the next call overwrites, so copy or `.item()` it
    before calling again. The first `warmup` calls run eagerly on a side stream (torch.compile, autotuners
    and the allocator settle there, and those steps train too); the next call records the graph and replays
    it, every later call only replays.
    """

    def __init__(self, step_fn: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer,
                 inputs: Sequence[torch.Tensor], warmup: int = 3):
        self.step_fn = step_fn
        self.optimizer = optimizer
        self.inputs = list(inputs)
        self.warmup = max(1, int(warmup))
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.loss: torch.Tensor | None = None
        self.cuda = any(p.is_cuda for g in optimizer.param_groups for p in g["params"])
        if self.cuda:
            check_capturable(optimizer)
            self._stream = torch.cuda.Stream()

    @property
    def recorded(self) -> bool:
        return self.graph is not None

    def _load(self, batch: Sequence[torch.Tensor]) -> None:
        if not batch:
            return
        if len(batch) != len(self.inputs):
            raise UserError(f"the step takes {len(self.inputs)} input tensors, got {len(batch)}")
        for i, (buf, new) in enumerate(zip(self.inputs, batch)):
            if tuple(new.shape) != tuple(buf.shape):
                raise UserError(f"input {i} has shape {tuple(new.shape)}; the recorded step takes {tuple(buf.shape)}")
            buf.copy_(new, non_blocking=True)

    def _run(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.loss = self.step_fn()

    def _record(self) -> None:
        # Gradients are None here, so the recorded backward allocates them in the graph's pool and every
        # replay writes them anew.
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self._stream):
                self.loss = self.step_fn()
        except RuntimeError as exc:  # a host synchronisation or a host-to-device copy inside the step
            raise UserError(
                f"the training step could not be recorded into a CUDA graph ({str(exc).splitlines()[0]}); "
                "it synchronises with the host or copies from it. Run it without the graph "
                "(train.cuda_graph=false); a resumed run goes on from the last checkpoint"
            ) from exc
        self.graph = graph

    def __call__(self, *batch: torch.Tensor) -> torch.Tensor:
        self._load(batch)
        if not self.cuda:
            self._run()
            return self.loss
        if self.graph is None:  # warm-up steps and the recording run on a side stream, as CUDA graphs need
            main = torch.cuda.current_stream()
            self._stream.wait_stream(main)
            with torch.cuda.stream(self._stream):
                if self.calls < self.warmup:
                    self._run()
                else:
                    self._record()
            main.wait_stream(self._stream)
            self.calls += 1
            if self.graph is None:
                return self.loss
        self.graph.replay()  # recording does not run the step: the first replay does
        return self.loss
