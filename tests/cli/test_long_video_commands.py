"""`generate --then`, `extend --times` / several prompts, and scripts/eval_long_videos.py, end to end on the tiny
model: real mp4 files in and out, real JSONL rows."""

import importlib.util
import json
from pathlib import Path

import numpy as np

from emu_video.cli.main import main
from emu_video.io.video import probe_video, read_video, write_video

ROOT = Path(__file__).resolve().parents[2]


def test_generate_then_makes_one_long_interpolated_video(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "long.mp4"
    assert main(["generate", "a red circle moves left", "--then", "a red circle moves right", "--then",
                 "a red circle stays still", "--model", str(tiny_model_dir), "--out", str(out), "--anchor", "none"]) == 0
    text = capsys.readouterr().out
    assert "segment 1/3: a red circle moves left" in text and "segment 3/3: a red circle stays still" in text
    assert "no extension weights; sampled with its first_frame weights" in text
    assert "4 past + 4 new frames each, anchor none" in text  # the tiny model's 8-frame clip, half of it past
    info = probe_video(out)
    assert info["fps"] == 16.0 and info["frames"] == 65
    m = ["--model", str(tiny_model_dir), "--quiet"]
    assert main(["generate", "a", "--then", "b", "--direct", *m]) == 2
    assert main(["generate", "a", "--then", "b", "--frames", "8", *m]) == 2
    assert main(["generate", "a", "--then", " ", *m]) == 2
    assert "prompt 2 is empty" in capsys.readouterr().err  # 8 + 4 + 4 frames at 4 fps, interpolated as any 16


def test_extend_times_and_one_prompt_per_segment(tiny_model_dir, tmp_path, capsys):
    src = write_video(tmp_path / "in.mp4", np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), np.uint8),
                      fps=4)
    m = ["--model", str(tiny_model_dir), "--quiet"]
    assert main(["extend", str(src), "it moves on", "--times", "3", "--out", str(tmp_path / "a.mp4"), *m]) == 0
    assert probe_video(tmp_path / "a.mp4")["frames"] == 8 + 3 * 4
    assert main(["extend", str(src), "it moves left", "it moves right", "--past", "2", "--out",
                 str(tmp_path / "b.mp4"), "--interpolate", *m]) == 0
    b = read_video(tmp_path / "b.mp4")
    from emu_video.diffusion.layouts import make_layout

    stitched = make_layout("interpolation").output_positions(8 + 2 * 6)[-1]  # 20 frames at 4 fps, stitched
    assert b.fps == 16.0 and b.num_frames == stitched == 77
    capsys.readouterr()
    assert main(["extend", str(src), "a", "b", "--times", "3", *m]) == 2
    assert "--times 3 with 2 prompts" in capsys.readouterr().err
    assert main(["extend", str(src), "a", "--times", "0", *m]) == 2


def test_eval_long_videos_script_writes_resumable_rows(tiny_model_dir, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("eval_long_videos", ROOT / "scripts" / "eval_long_videos.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "rows.jsonl"
    args = ["--model", str(tiny_model_dir), "--label", "tiny", "--sets", "eval-seen", "--limit", "2",
            "--segments", "1,2", "--anchor", "first", "--keyframes", "1", "--steps", "1", "--interp-steps", "1",
            "--out", str(out), "--table", str(tmp_path / "table.md")]
    assert script.main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    long = [r for r in rows if r["check"] == "long"]
    assert sorted((r["seed"], r["segments"]) for r in long) == [(1000, 1), (1000, 2), (1001, 1), (1001, 2)]
    two = next(r for r in long if r["segments"] == 2)
    assert [s["prompt"] for s in two["per_segment"]] == [two["prompt"], two["prompt"].replace("left", "right")]
    assert two["weights"] == "first_frame" and two["seam_flicker"] is not None
    assert [r["weights"] for r in rows if r["check"] == "keyframes"] == ["first_frame"]
    assert "| tiny | first_frame | first | 2 |" in (tmp_path / "table.md").read_text()
    assert script.main(args) == 0  # everything done: nothing is generated again
    assert len(out.read_text().splitlines()) == len(rows)
    capsys.readouterr()
    assert script.main(["--summarize", str(out)]) == 0 and "| tiny | first_frame | first | 1 |" in capsys.readouterr().out
