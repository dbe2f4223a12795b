"""Protocol plans: UCF-101 class prompts and class distribution, VBench custom_input names, resuming."""

from __future__ import annotations

import json

import pytest

from emu_video.errors import UserError
from emu_video.evaluation.prompts import load_prompts
from emu_video.evaluation.protocol_runner import parse_shard, select
from emu_video.evaluation.protocols import (
    class_prompt,
    msrvtt_captions,
    msrvtt_plan,
    pending,
    proportional_allocation,
    read_prompt_lines,
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


def _msrvtt_json(path, videos, sentences):
    path.write_text(json.dumps({"info": {}, "videos": videos, "sentences": sentences}))
    return path


def test_msrvtt_test_split_first_caption_per_video(tmp_path):
    videos = [{"video_id": f"video{i}", "split": "train" if i < 7010 else "test", "id": i} for i in (6999, 7010, 7011)]
    sentences = [{"video_id": "video7011", "caption": "b later", "sen_id": 9},
                 {"video_id": "video6999", "caption": "train caption", "sen_id": 0},
                 {"video_id": "video7010", "caption": " a second ", "sen_id": 4},
                 {"video_id": "video7011", "caption": "b first", "sen_id": 3},
                 {"video_id": "video7010", "caption": "a first", "sen_id": 2}]
    ann = _msrvtt_json(tmp_path / "test_videodatainfo.json", videos, sentences)
    assert msrvtt_captions(ann) == [("video7010", "a first"), ("video7011", "b first")]
    assert msrvtt_plan(msrvtt_captions(ann), seed=10) == [
        {"file": "video7010.mp4", "prompt": "a first", "seed": 10},
        {"file": "video7011.mp4", "prompt": "b first", "seed": 11}]
    csv = tmp_path / "MSRVTT_JSFUSION_test.csv"
    csv.write_text("key,vid_key,video_id,sentence\nret0,msr7579,video7579,a girl puts a sweater on a dog\n"
                   "ret1,msr7725,video7725,\"young people sit, and talk\"\n")
    assert msrvtt_captions(csv) == [("video7579", "a girl puts a sweater on a dog"),
                                    ("video7725", "young people sit, and talk")]


def test_msrvtt_bad_files_name_the_file_and_the_expected_format(tmp_path):
    cases = {
        "missing.json": None,
        "notjson.json": "{",
        "nolists.json": json.dumps({"videos": {}}),
        "trainval.json": json.dumps({"videos": [{"video_id": "video1", "split": "train"}],
                                     "sentences": [{"video_id": "video1", "caption": "x"}]}),
        "nocaption.json": json.dumps({"videos": [{"video_id": "video7010", "split": "test"}], "sentences": []}),
        "badrow.json": json.dumps({"videos": [{"id": 1}], "sentences": []}),
        "cols.csv": "key,text\n1,a\n",
        "ann.txt": "video7010 a dog",
    }
    expected = {"trainval.json": "test_videodatainfo.json", "nocaption.json": "no caption"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(UserError) as info:
            msrvtt_captions(path)
        assert name in str(info.value) and expected.get(name, "MSRVTT_JSFUSION_test.csv") in str(info.value)


def test_shards_partition_the_limited_plan():
    plan = vbench_plan([f"p{i}" for i in range(7)], samples_per_prompt=1)
    for n in (1, 2, 3):
        parts = [select(plan, parse_shard(f"{i}/{n}"), limit=5) for i in range(n)]
        assert sorted(e["file"] for part in parts for e in part) == sorted(e["file"] for e in plan[:5])
        assert sum(len(p) for p in parts) == 5
    assert parse_shard(None) == (0, 1)
    for bad in ("1/1", "-1/2", "a/b", "3", "0/0"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)


def test_prompt_lines(tmp_path):
    (tmp_path / "p.txt").write_text("a cat\n\n  a dog  \na cat\n")
    assert read_prompt_lines(tmp_path / "p.txt") == ["a cat", "a dog"]
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match="no prompts"):
        read_prompt_lines(tmp_path / "empty.txt")
