"""The CPU thread choice: processors allowed, other work's share measured from /proc/stat, the user's choice."""

import os
import subprocess
import sys
import time

import pytest
import torch

from emu_video import cpu_threads
from emu_video.cpu_threads import (
    CpuLoadProbe,
    ThreadGovernor,
    cgroup_cpu_quota,
    fixed_threads,
    free_cpus,
)


def test_cgroup_quota_v2_and_v1(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(str(tmp_path)) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(str(tmp_path)) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(str(tmp_path)) == 2.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(str(tmp_path)) is None


def test_proc_stat_ticks_count_only_allowed_processors(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 80 0 0 0 0 0 0\n"
                    "cpu0 5 0 5 40 0 0 0 0 0 0\n"
                    "cpu1 5 0 5 30 10 0 0 0 0 0\n"
                    "intr 1 2 3\n")
    assert cpu_threads._cpu_ticks({0}, str(stat)) == (10, 50)
    assert cpu_threads._cpu_ticks({0, 1}, str(stat)) == (20, 100)  # iowait counts as idle
    assert cpu_threads._cpu_ticks(None, str(tmp_path / "missing")) is None


def test_free_processors_and_user_choice():
    assert free_cpus(None, 4) == 4
    assert free_cpus(0.2, 2) == 2
    assert free_cpus(1.0, 2) == 1
    assert free_cpus(3.7, 2) == 1  # never fewer than one
    assert free_cpus(1.4, 4) == 3
    assert fixed_threads(3, {}) == (3, "--threads")
    assert fixed_threads(None, {"OMP_NUM_THREADS": "2"}) == (2, "OMP_NUM_THREADS")
    assert fixed_threads(None, {"OMP_NUM_THREADS": "²"}) is None  # not a number int() reads: ignored
    assert fixed_threads(None, {}) is None


@pytest.mark.skipif(not os.path.exists("/proc/stat") or not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_probe_sees_another_process_and_not_itself():
    probe = CpuLoadProbe.start()
    end = time.monotonic() + 0.6
    while time.monotonic() < end:  # this process busy: not counted as other work
        pass
    own = probe.busy_elsewhere()
    cpu = sorted(os.sched_getaffinity(0))[0]
    spin = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    try:
        time.sleep(0.3)
        probe.restart()
        time.sleep(0.8)
        other = probe.busy_elsewhere()
    finally:
        spin.kill()
        spin.wait()
    assert own is not None and other is not None
    assert other > 0.6  # one busy process: about one processor
    assert other > own + 0.4  # ...and this process's own work is taken out


class FakeProbe:
    def __init__(self, readings):
        self.readings = list(readings)

    def busy_elsewhere(self):
        return self.readings.pop(0)

    def restart(self):
        pass


def test_governor_follows_other_work_and_respects_the_user(monkeypatch, capsys):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpu_threads, "allowed_cpus", lambda: 4)
    before = torch.get_num_threads()
    try:
        gov = ThreadGovernor(smoothing=1.0)
        gov.probe = FakeProbe([0.0, 2.2, 2.9, 0.1])
        assert gov.apply() == 4 and torch.get_num_threads() == 4
        gov(0, None, None)
        assert gov.threads == 2 and torch.get_num_threads() == 2
        gov(1, None, None)
        assert gov.threads == 1 and torch.get_num_threads() == 1
        gov(2, None, None)
        assert gov.threads == 4 and torch.get_num_threads() == 4  # the other work stopped
        assert "cpu: 2 threads while other work keeps 2.2 of 4 processors busy" in capsys.readouterr().out

        fixed = ThreadGovernor(requested=3)
        fixed.probe = FakeProbe([3.0])
        assert fixed.apply() == 3
        fixed(0, None, None)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_loading_runs_on_one_thread_unless_the_user_chose():
    import torch

    from emu_video.cpu_threads import ThreadGovernor

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with ThreadGovernor(None, quiet=True).loading():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with ThreadGovernor(2, quiet=True).loading():
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
