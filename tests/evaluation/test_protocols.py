"""Protocol plans: UCF-101 class prompts and class distribution, VBench custom_input names, resuming."""

from __future__ import annotations

import pytest

from emu_video.errors import UserError
from emu_video.evaluation.prompts import load_prompts
from emu_video.evaluation.protocols import (
    class_prompt,
    pending,
    proportional_allocation,
    ucf101_class_counts,
    ucf101_plan,
    vbench_plan,
    write_prompt_file,
)


def test_class_prompts_from_ucf101_folder_names():
    assert class_prompt("ApplyEyeMakeup") == "apply eye makeup"
    assert class_prompt("YoYo") == "yo yo"
    assert class_prompt("PlayingDaf") == "playing daf"
    assert class_prompt("TaiChi") == "tai chi"


def test_allocation_follows_the_class_distribution_and_sums_to_total(tmp_path):
    for cls, n in {"ApplyEyeMakeup": 145, "Archery": 145, "YoYo": 128, "Basketball": 134}.items():
        (tmp_path / cls).mkdir()
        for i in range(n):
            (tmp_path / cls / f"v_{cls}_{i:03d}.avi").touch()
    counts = ucf101_class_counts(tmp_path)
    alloc = proportional_allocation(counts, 100)
    assert sum(alloc.values()) == 100 and alloc["YoYo"] < alloc["Archery"]
    assert all(abs(alloc[k] - 100 * v / 552) < 1 for k, v in counts.items())
    plan = ucf101_plan(counts, total=10)
    assert len(plan) == 10 and len({e["seed"] for e in plan}) == 10
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / plan[0]["file"]).touch()
    assert pending(plan, tmp_path / "out") == plan[1:]
    prompts = load_prompts(write_prompt_file(plan, tmp_path / "prompts.jsonl"))
    assert prompts[plan[3]["file"]].prompt == plan[3]["prompt"]
    with pytest.raises(UserError, match="UCF101.rar"):
        ucf101_class_counts(tmp_path / "missing")


def test_vbench_custom_input_names():
    plan = vbench_plan(["a cat runs", "a dog"], samples_per_prompt=2)
    assert [e["file"] for e in plan] == ["a cat runs-0.mp4", "a cat runs-1.mp4", "a dog-0.mp4", "a dog-1.mp4"]
    with pytest.raises(UserError):
        vbench_plan(["either/or"])
