"""How many threads torch runs on the CPU: the processors this process may use, less those other work keeps busy.

PyTorch starts one compute thread per processor. On a machine where other programs are running, those
threads wait on each other at every parallel region for whichever of them was descheduled, and a run slows
down several times over instead of sharing the machine (`benchmarks/cpu_threads.py` measures it). So the
generating commands measure how busy other programs keep the processors (their share of the processor time
from /proc/stat, this process's own time taken out) while the model loads and again after every sampler
step, and use the processors left free, at least one. `--threads N` or `OMP_NUM_THREADS` decide instead.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def allowed_cpus() -> int:
    """Processors this process may run on: its affinity mask, capped by a cgroup CPU quota where one is set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, int(quota + 0.5)))
    return max(1, cpus)


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in processors (cgroup v2 `cpu.max`, or v1's cfs files), or None."""
    try:
        with open(os.path.join(root, "cpu.max")) as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us")) as f:
            quota = int(f.read())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us")) as f:
            period = int(f.read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def _cpu_ticks(cpus: set[int] | None, path: str = "/proc/stat") -> tuple[int, int] | None:
    """(busy, total) clock ticks summed over the given processors since boot, or None where /proc/stat is missing."""
    busy = total = 0
    try:
        with open(path) as f:
            for line in f:
                if not line.startswith("cpu") or line.startswith("cpu "):
                    continue
                name, *fields = line.split()
                if cpus is not None and int(name[3:]) not in cpus:
                    continue
                values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
                idle = values[3] + values[4]
                busy += sum(values) - idle
                total += sum(values)
    except (OSError, ValueError):
        return None
    return (busy, total) if total else None


def _own_ticks() -> float:
    t = os.times()
    return (t.user + t.system) * _TICKS


@dataclass
class CpuLoadProbe:
    """Measures how many processors other programs keep busy between `start()` and `busy_elsewhere()`."""

    cpus: set[int] | None
    start_ticks: tuple[int, int] | None
    start_own: float
    started: float

    @classmethod
    def start(cls) -> CpuLoadProbe:
        try:
            cpus = set(os.sched_getaffinity(0))
        except AttributeError:
            cpus = None
        return cls(cpus, _cpu_ticks(cpus), _own_ticks(), time.monotonic())

    def restart(self) -> None:
        self.start_ticks, self.start_own, self.started = _cpu_ticks(self.cpus), _own_ticks(), time.monotonic()

    def busy_elsewhere(self) -> float | None:
        """Processors' worth of work done by other processes since start (None if unknown or too short)."""
        end = _cpu_ticks(self.cpus)
        if self.start_ticks is None or end is None:
            return None
        busy, total = end[0] - self.start_ticks[0], end[1] - self.start_ticks[1]
        if total < 10:  # under ~0.1 processor-seconds: too short to say
            return None
        n = len(self.cpus) if self.cpus else (os.cpu_count() or 1)
        others = max(0.0, busy - (_own_ticks() - self.start_own))
        return n * others / total


def fixed_threads(requested: int | None = None, environ=os.environ) -> tuple[int, str] | None:
    """The thread count the user chose (`--threads`, else OMP_NUM_THREADS), or None."""
    if requested is not None:
        return requested, "--threads"
    env = environ.get("OMP_NUM_THREADS", "").strip()
    if env.isascii() and env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    return None


def free_cpus(busy: float | None, cpus: int | None = None) -> int:
    """Processors left to us when other work keeps `busy` of them busy (all of them when unknown), at least 1."""
    cpus = allowed_cpus() if cpus is None else cpus
    if busy is None:
        return cpus
    return max(1, min(cpus, int(cpus - busy + 0.5)))


class ThreadGovernor:
    """Sets torch's CPU thread count to the processors other work leaves free, measured while the model loads
    (`apply`) and again after every sampler step (pass the governor as the pipelines' `callback`)."""

    def __init__(self, requested: int | None = None, quiet: bool = False, smoothing: float = 0.5):
        self.fixed = fixed_threads(requested)
        self.cpus = allowed_cpus()
        self.quiet = quiet
        self.smoothing = smoothing
        self.busy: float | None = None  # other work, in processors, smoothed over steps
        self.threads = self.fixed[0] if self.fixed else self.cpus
        self.fewest = self.threads
        self.probe = CpuLoadProbe.start()

    @contextlib.contextmanager
    def loading(self):
        """One thread while the model loads, unless the user chose a count: loading is copies of tensors
        (float16 files cast to float32, weights copied into the network), which gain little from threads and
        lose a lot when another program keeps a processor busy: a thread that waits for a descheduled
        sibling at every copy made the default model's load take 3 s instead of 0.4 s on a busy 2-core
        machine (benchmarks/cpu_demo.py). `apply` sets the governed count afterwards."""
        import torch

        if self.fixed is not None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def apply(self) -> int:
        """Set the thread count now (after loading the model: the first measurement)."""
        import torch

        if self.fixed is None:
            self._measure()
        torch.set_num_threads(self.threads)
        return self.threads

    def _measure(self) -> None:
        busy = self.probe.busy_elsewhere()
        if busy is None:
            return
        self.probe.restart()
        self.busy = busy if self.busy is None else self.smoothing * busy + (1 - self.smoothing) * self.busy
        threads = free_cpus(self.busy, self.cpus)
        if threads < self.fewest and not self.quiet:
            from tqdm import tqdm

            tqdm.write(f"cpu: {threads} thread{'s' if threads > 1 else ''} while other work keeps {self.busy:.1f} of "
                       f"{self.cpus} processors busy (--threads N to choose)")
        self.fewest = min(self.fewest, threads)
        self.threads = threads

    def __call__(self, i, t, latents) -> None:  # a sampler step callback
        if self.fixed is not None:
            return
        before = self.threads
        self._measure()
        if self.threads != before:
            import torch

            torch.set_num_threads(self.threads)
