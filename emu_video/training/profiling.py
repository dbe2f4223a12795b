"""Profile a few training steps (`log.profile_from`, `log.profile_steps`): a Chrome trace and a table.

The trainer marks the phases of a step with `phase(name)` ranges ("train/data", "train/forward_backward",
"train/clip", "train/optimizer", "train/ema"); the table starts with those phases, then lists the operators
and kernels that took the most time. Files go to OUTPUT/logs/profile-rank{R}.{txt,trace.json}.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

PHASE_PREFIX = "train/"


def phase(name: str):
    """A named range of a training step (shows in the profile; costs about a microsecond otherwise)."""
    return torch.profiler.record_function(PHASE_PREFIX + name)


class StepProfiler:
    """Runs torch.profiler over steps [start, start + count) of a run (1-based step numbers) and writes
    its results once they are done. `start` = 0 profiles nothing."""

    def __init__(self, log_dir: Path, rank: int, start: int, count: int, device: torch.device):
        self.log_dir, self.rank, self.start, self.count, self.device = Path(log_dir), rank, start, count, device
        self._prof = None
        self._done = 0
        self.written: list[Path] = []

    def before_step(self, step: int) -> None:
        """`step`: the number of the step about to run."""
        if self.start and self._prof is None and not self.written and step >= self.start:
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
            self._prof = profile(activities=acts, record_shapes=False)
            self._prof.__enter__()

    def after_step(self) -> list[Path]:
        """Returns the files written when the last profiled step has just ended, else []."""
        if self._prof is None:
            return []
        self._done += 1
        if self._done < self.count:
            return []
        return self.finish()

    def finish(self) -> list[Path]:
        if self._prof is None:
            return []
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        prof, self._prof = self._prof, None
        prof.__exit__(None, None, None)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stem = self.log_dir / f"profile-rank{self.rank}"
        trace = stem.with_suffix(".trace.json")
        with contextlib.suppress(Exception):  # a trace that cannot be exported must not stop training
            prof.export_chrome_trace(str(trace))
        table = stem.with_suffix(".txt")
        table.write_text(summarize(prof, max(self._done, 1), self.device.type == "cuda"))
        self.written = [p for p in (table, trace) if p.exists()]
        return self.written


def _device_total_us(evt) -> float:
    for name in ("device_time_total", "cuda_time_total"):
        value = getattr(evt, name, None)
        if value is not None:
            return float(value)
    return 0.0


def summarize(prof, steps: int, cuda: bool) -> str:
    """Per step: each phase's host time, the GPU time of the kernels it launched and its span on the GPU's
    timeline; then the operators and kernels with the most time."""
    phases: dict[str, dict[str, float]] = {}
    for evt in prof.key_averages():
        if not evt.key.startswith(PHASE_PREFIX):
            continue
        row = phases.setdefault(evt.key, {"host": 0.0, "kernels": 0.0, "span": 0.0})
        if getattr(evt, "device_type", None) == torch.autograd.DeviceType.CPU:
            row["host"] += evt.cpu_time_total
            row["kernels"] += _device_total_us(evt)
        else:  # the range as the GPU ran it (a user annotation on the device's timeline)
            row["span"] += _device_total_us(evt)
    lines = [f"profiled steps: {steps} (times in ms per step)", "",
             f"{'phase':28s} {'host':>9s} {'GPU kernels':>12s} {'GPU span':>9s}"]
    for name in sorted(phases):
        row = phases[name]
        lines.append(f"{name:28s} {row['host'] / 1e3 / steps:9.2f} {row['kernels'] / 1e3 / steps:12.2f} "
                     f"{row['span'] / 1e3 / steps:9.2f}")
    sort_by = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    lines += ["", "A phase whose host time is well above its GPU span is bound by the CPU (kernel launches).",
              "", f"operators and kernels by {'device' if cuda else 'host'} time (all steps):",
              prof.key_averages().table(sort_by=sort_by, row_limit=40, max_name_column_width=90)]
    if cuda:  # where a CPU-bound step spends its host time
        lines += ["", "operators by host time (all steps):",
                  prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=90)]
    return "\n".join(lines) + "\n"
