"""benchmarks/train_parallel.py end to end on the CPU: both strategies train under torchrun (gloo), agree
on their losses, each resumes the other's checkpoint from the step where it stopped, and two processes
match one process with the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import builders

ROOT = Path(__file__).resolve().parents[2]


def test_train_parallel_script_runs_both_strategies_and_cross_resumes(tmp_path):
    out = tmp_path / "parallel.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "train_parallel.py"), "--tokenizer", str(builders.tokenizer_files()),
           "--work", str(tmp_path / "work"), "--unet", "tiny", "--device", "cpu", "--resolution", "32",
           "--frames", "4", "--batch", "2", "--steps", "2", "--resume-steps", "1", "--warmup", "0",
           "--workers", "0", "--nproc", "2", "--resume-nproc", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    ddp, fsdp = result["runs"]["ddp"], result["runs"]["fsdp"]
    assert ddp["steps"] == fsdp["steps"] == [1, 2]
    for step in ("1", "2"):
        assert abs(ddp["losses"][step] - fsdp["losses"][step]) < 1e-4 * abs(ddp["losses"][step])
    assert ddp["samples_per_s_per_gpu"] > 0 and fsdp["samples_per_s_per_gpu"] > 0
    # resumed on one process: by the other strategy, and by the same one
    assert sorted(r["from"] + " -> " + r["strategy"] for r in result["resumed"]) == [
        "ddp x2 -> ddp", "ddp x2 -> fsdp", "fsdp x2 -> ddp", "fsdp x2 -> fsdp"]
    assert all(r["went_on"] and r["steps"] == [3] and r["nproc"] == 1 for r in result["resumed"])
    assert "| ddp | 2 |" in proc.stdout and "| fsdp | 2 |" in proc.stdout
    # one process with grad_accum 2: the same losses (per-sample randomness) and a scaling efficiency
    assert result["baseline"]["nproc"] == 1 and result["baseline"]["grad_accum"] == 2
    for strategy in ("ddp", "fsdp"):
        assert result["compared"][strategy]["max_rel_loss_diff_first_steps"] < 1e-4
        assert result["compared"][strategy]["scaling_efficiency"] > 0
