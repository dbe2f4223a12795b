"""`emu-video protocol`: real tiny videos through the text-to-video pipeline, split over shards, killed and
resumed, in the layout `emu-video evaluate` and VBench read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emu_video.cli.main import main
from emu_video.evaluation.prompts import load_prompts
from emu_video.io.video import probe_video, read_video


def _ucf_tree(root):
    for cls, n in {"ApplyEyeMakeup": 3, "YoYo": 2}.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            (root / cls / f"v_{cls}_g01_c{i:02d}.avi").touch()
    return root


def test_ucf101_two_shards_resume_after_a_kill(tiny_model_dir, tmp_path, capsys, monkeypatch, one_thread):
    ucf = _ucf_tree(tmp_path / "UCF-101")
    out = tmp_path / "ours"
    run = ["protocol", "ucf101", "--real", str(ucf), "--model", str(tiny_model_dir), "--out", str(out),
           "--total", "4", "--quiet", "--threads", "1"]
    # A finished video of an earlier run, and the temporary file a killed run left behind.
    out.mkdir()
    (out / "ApplyEyeMakeup_0001.mp4").write_bytes(b"finished earlier")
    (out / ".YoYo_0000.tmp.mp4").write_bytes(b"half a video")
    assert main(run + ["--shard", "0/2"]) == 0
    printed = capsys.readouterr().out
    assert "generated 2, 0 already there" in printed and "not complete yet" in printed
    assert not (out / "YoYo_0001.mp4").exists()
    assert main(run + ["--shard", "1/2"]) == 0
    printed = capsys.readouterr().out
    assert "generated 1, 1 already there" in printed and "score it with:" in printed
    assert f"emu-video evaluate --real {ucf} --fake {out} --metrics fvd,is" in printed

    # Class distribution 3:2 over 4 videos -> 2 + 2; the skipped file is untouched, the temporary file replaced.
    videos = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert videos == ["ApplyEyeMakeup_0000.mp4", "ApplyEyeMakeup_0001.mp4", "YoYo_0000.mp4", "YoYo_0001.mp4",
                      "prompts.jsonl", "protocol.json"]
    assert (out / "ApplyEyeMakeup_0001.mp4").read_bytes() == b"finished earlier"
    assert not (out / ".YoYo_0000.tmp.mp4").exists()
    for name in ("ApplyEyeMakeup_0000.mp4", "YoYo_0000.mp4", "YoYo_0001.mp4"):
        info = probe_video(out / name)
        assert info["codec"] == "h264" and info["frames"] == 37 and info["fps"] == 16.0
    prompts = load_prompts(out / "prompts.jsonl")
    assert {k: v.prompt for k, v in prompts.items()} == {
        "ApplyEyeMakeup_0000.mp4": "apply eye makeup", "ApplyEyeMakeup_0001.mp4": "apply eye makeup",
        "YoYo_0000.mp4": "yo yo", "YoYo_0001.mp4": "yo yo"}

    # The plan's seed of YoYo_0000 (entry 2) is 2: `emu-video generate` with it makes the same video.
    single = tmp_path / "single.mp4"
    assert main(["generate", "yo yo", "--seed", "2", "--model", str(tiny_model_dir), "--out", str(single),
                 "--quiet", "--threads", "1"]) == 0
    assert np.array_equal(read_video(single).frames, read_video(out / "YoYo_0000.mp4").frames)
    assert not np.array_equal(read_video(single).frames, read_video(out / "YoYo_0001.mp4").frames)

    # Everything present: nothing to do (no model load); other settings into the same folder are refused.
    capsys.readouterr()
    assert main(run) == 0 and "generated 0, 4 already there" in capsys.readouterr().out
    import emu_video.cli.generate

    monkeypatch.setattr(emu_video.cli.generate, "load_components", lambda args: pytest.fail("the model was loaded"))
    (out / "YoYo_0001.mp4").unlink()
    assert main(run + ["--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "steps: None there, 3 now" in err
    assert json.loads((out / "protocol.json").read_text())["steps"] is None


def test_msrvtt_and_vbench_layouts(tiny_model_dir, tmp_path, capsys, one_thread):
    ann = tmp_path / "test_videodatainfo.json"
    ann.write_text(json.dumps({
        "videos": [{"video_id": "video7010", "split": "test"}, {"video_id": "video7011", "split": "test"}],
        "sentences": [{"video_id": "video7011", "caption": "a man sings", "sen_id": 5},
                      {"video_id": "video7010", "caption": "a dog runs on grass", "sen_id": 2},
                      {"video_id": "video7010", "caption": "a dog plays", "sen_id": 1}]}))
    m = tmp_path / "msrvtt"
    assert main(["protocol", "msrvtt", "--annotations", str(ann), "--model", str(tiny_model_dir), "--out", str(m),
                 "--limit", "1", "--no-interpolate", "--quiet", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "--metrics clipsim,fvd" in printed and f"--prompts {m / 'prompts.jsonl'}" in printed
    assert probe_video(m / "video7010.mp4")["frames"] == 8 and not (m / "video7011.mp4").exists()
    assert (m / "prompts.jsonl").read_text() == '{"file": "video7010.mp4", "prompt": "a dog plays"}\n'

    txt = tmp_path / "all_dimension.txt"
    txt.write_text("a cat runs\n\nthe sea at night\n")
    v = tmp_path / "vbench"
    (v).mkdir()
    (v / "the sea at night-0.mp4").write_bytes(b"done")
    assert main(["protocol", "vbench", "--prompts", str(txt), "--samples", "1", "--model", str(tiny_model_dir),
                 "--out", str(v), "--no-interpolate", "--quiet", "--threads", "1"]) == 0
    assert "vbench evaluate --videos_path" in capsys.readouterr().out
    assert probe_video(v / "a cat runs-0.mp4")["frames"] == 8
    assert sorted(load_prompts(v / "prompts.jsonl")) == ["a cat runs-0.mp4", "the sea at night-0.mp4"]


def test_bad_input_is_one_line_before_any_model_loads(tmp_path, capsys):
    base = ["--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "o")]
    cases = [
        (["protocol", "msrvtt", "--annotations", str(tmp_path / "missing.json"), *base], "missing.json"),
        (["protocol", "ucf101", "--real", str(tmp_path / "nope"), *base], "UCF101.rar"),
        (["protocol", "vbench", "--prompts", str(tmp_path / "p.txt"), *base], "p.txt"),
        (["protocol", "msrvtt", "--annotations", str(tmp_path / "x.json"), "--shard", "2/2", *base], "0 <= I < N"),
    ]
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "p2.txt").write_text("a cat\n")
    (tmp_path / "file").write_text("")
    cases.append((["protocol", "vbench", "--prompts", str(tmp_path / "p2.txt"), "--model", str(tmp_path),
                   "--out", str(tmp_path / "file")], "must be a folder"))
    for argv, needle in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "o").exists()
