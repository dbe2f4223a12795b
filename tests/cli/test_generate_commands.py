"""`generate`, `animate`, `interpolate`, `extend` end to end: real files in, real H.264 files out."""

import os
import shutil

import numpy as np
import pytest

from emu_video.cli.main import main
from emu_video.io.video import probe_video, read_video, write_image, write_video


def _frames(n, size=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_generate_writes_mp4_first_frame_and_gif(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    args = ["generate", "a red circle moves left", "--model", str(tiny_model_dir), "--out", str(out),
            "--seed", "5", "--frames", "16", "--save-first-frame", "--gif", "--quiet", "--threads", "1"]
    assert main(args) == 0
    info = probe_video(out)
    assert info["frames"] == 65 and info["fps"] == 16.0 and info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (tmp_path / "v.png").exists() and (tmp_path / "v.gif").exists()
    assert f"wrote {out}" in capsys.readouterr().out
    # same seed, arguments and threads -> the same video (another thread count may change the last bits)
    first = read_video(out).frames
    assert main(args) == 0
    assert np.array_equal(read_video(out).frames, first)


def test_animate_interpolate_extend(tiny_model_dir, tmp_path, capsys):
    img = write_image(tmp_path / "in.png", _frames(1, 24)[0])
    assert main(["animate", str(img), "it moves", "--model", str(tiny_model_dir), "--out", str(tmp_path / "a.mp4"),
                 "--frames", "8", "--quiet"]) == 0
    assert probe_video(tmp_path / "a.mp4")["frames"] == 8 and probe_video(tmp_path / "a.mp4")["fps"] == 4.0
    assert main(["animate", str(img), "it moves", "--model", str(tiny_model_dir), "--out", str(tmp_path / "a16.mp4"),
                 "--frames", "8", "--interpolate", "--quiet"]) == 0
    assert probe_video(tmp_path / "a16.mp4")["frames"] == 37

    low = write_video(tmp_path / "low.mp4", _frames(8), fps=4)
    assert main(["interpolate", str(low), "--model", str(tiny_model_dir), "--out", str(tmp_path / "i.mp4"),
                 "--quiet"]) == 0
    info = probe_video(tmp_path / "i.mp4")
    assert info["frames"] == 37 and info["fps"] == 16.0
    gif = write_video(tmp_path / "low.gif", _frames(16), fps=4)
    assert main(["interpolate", str(gif), "--model", str(tiny_model_dir), "--out", str(tmp_path / "i2.mp4"),
                 "--quiet"]) == 0
    assert probe_video(tmp_path / "i2.mp4")["frames"] == 65

    assert main(["extend", str(low), "then it stops", "--model", str(tiny_model_dir), "--out",
                 str(tmp_path / "e.mp4"), "--quiet"]) == 0
    assert probe_video(tmp_path / "e.mp4")["frames"] == 8 + 4
    fast = write_video(tmp_path / "fast.mp4", _frames(17), fps=16)
    assert main(["extend", str(fast), "then it stops", "--model", str(tiny_model_dir), "--out",
                 str(tmp_path / "e2.mp4"), "--quiet"]) == 0
    assert probe_video(tmp_path / "e2.mp4")["frames"] == 5 + 4  # 17 frames at 16 fps are 5 at 4 fps
    assert "the 17 frames at 16 fps became 5 at 4 fps, followed by 4 new ones" in capsys.readouterr().out


def test_direct_keyframes_and_samplers_from_the_command_line(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "d.mp4"
    assert main(["generate", "a red circle moves left", "--model", str(tiny_model_dir), "--out", str(out), "--direct",
                 "--frames", "8", "--no-interpolate", "--sampler", "dpmpp-2m", "--quiet"]) == 0
    assert probe_video(out)["frames"] == 8
    # the folder has no direct weights: it says which weights sampled it
    assert "no direct weights; sampled with its first_frame weights" in capsys.readouterr().out

    first, last = (write_image(tmp_path / f"{n}.png", _frames(1, 24, seed=k)[0]) for k, n in enumerate(("a", "b")))
    assert main(["animate", str(first), "it moves", "--last", str(last), "--model", str(tiny_model_dir), "--out",
                 str(tmp_path / "k.mp4"), "--frames", "8", "--sampler", "euler", "--quiet"]) == 0
    assert probe_video(tmp_path / "k.mp4")["frames"] == 8
    assert "no keyframes weights" in capsys.readouterr().out

    with pytest.raises(SystemExit):  # argparse lists the samplers
        main(["generate", "x", "--sampler", "heun"])
    assert "dpmpp-2m" in capsys.readouterr().err


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("emu-video: error:") and "Traceback" not in err and len(err.splitlines()) == 1
    return err


def test_bad_input_gives_one_clear_line(tiny_model_dir, tmp_path, capsys):
    m = ["--model", str(tiny_model_dir), "--quiet"]
    assert main(["animate", str(tmp_path / "missing.png"), "x", *m]) == 2
    assert "not found" in _one_line_error(capsys)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["animate", str(tmp_path / "bad.png"), "x", *m]) == 2
    assert "cannot read image" in _one_line_error(capsys)
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x01 definitely not a video")
    assert main(["interpolate", str(tmp_path / "bad.mp4"), *m]) == 2
    assert "cannot read video" in _one_line_error(capsys)
    ten = write_video(tmp_path / "ten.mp4", _frames(10), fps=4)
    assert main(["interpolate", str(ten), *m]) == 2
    assert "multiple of 8" in _one_line_error(capsys)
    high = write_video(tmp_path / "high.mp4", _frames(65), fps=16)
    assert main(["interpolate", str(high), *m]) == 2
    assert "--no-interpolate" in _one_line_error(capsys)
    assert main(["generate", "x", "--steps", "0", *m]) == 2
    assert "at least 1" in _one_line_error(capsys)
    assert main(["generate", "x", "--tune-kernels", *m]) == 2
    assert "add --optimize" in _one_line_error(capsys)
    tiny = write_image(tmp_path / "tiny.png", _frames(1, 4)[0])
    assert main(["animate", str(tiny), "x", *m]) == 2
    assert "too small" in _one_line_error(capsys)
    assert main(["generate", "x", "--model", str(tmp_path / "no_model")]) == 2
    assert "not found" in _one_line_error(capsys)


def test_arguments_are_checked_before_the_model_runs(tmp_path, capsys, monkeypatch):
    """Every argument error is one line, before any model is loaded (the model folder given does not even exist)."""
    import emu_video.cli.generate as generate

    monkeypatch.setattr(generate, "load_components", lambda args: pytest.fail("the model was loaded"))
    m = ["--model", str(tmp_path / "no_model"), "--quiet"]
    for args, message in [
        (["generate", "x", "--w-txt", "nan"], "--w-txt must be a finite number"),
        (["generate", "x", "--image-guidance", "inf"], "--image-guidance must be a finite number"),
        (["generate", "x", "--frames", "1"], "--frames must be at least 2"),
        (["generate", "   "], "the prompt is empty"),
        (["generate", "x", "--device", "foo"], "is not a torch device"),
        (["generate", "x", "--threads", "0"], "--threads must be at least 1"),
    ]:
        assert main([*args, *m]) == 2, args
        assert message in _one_line_error(capsys)
    (tmp_path / "a_file").write_text("x")  # an output "folder" that is a file
    assert main(["generate", "x", "--out", str(tmp_path / "a_file" / "v.mp4"), *m]) == 2
    assert "not a writable folder" in _one_line_error(capsys)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # (root can write anywhere: nothing to check then)
            assert main(["generate", "x", "--out", str(locked / "v.mp4"), *m]) == 2
            assert "not a writable folder" in _one_line_error(capsys)
    finally:
        locked.chmod(0o700)


def test_broken_model_folders_are_refused(tiny_model_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    assert main(["generate", "x", "--model", str(broken), "--quiet"]) == 2
    assert "missing weights" in _one_line_error(capsys)

    mismatched = tmp_path / "mismatched"
    shutil.copytree(tiny_model_dir, mismatched)
    cfg = (mismatched / "unet" / "config.json")
    cfg.write_text(cfg.read_text().replace('"block_out_channels": [\n    32,', '"block_out_channels": [\n    16,'))
    assert main(["generate", "x", "--model", str(mismatched), "--quiet"]) == 2
    assert "do not fit" in _one_line_error(capsys)

    for relative, content, message in [("model_index.json", b'{"unet": "\xb2', "not UTF-8 text"),
                                       ("model_index.json", b"[1, 2]", "expected a JSON object"),
                                       ("unet/config.json", b"{broken", "unreadable U-Net config")]:
        folder = tmp_path / f"bad-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(tiny_model_dir, folder)
        (folder / relative).write_bytes(content)
        assert main(["generate", "x", "--model", str(folder), "--quiet"]) == 2
        assert message in _one_line_error(capsys)


def test_help_explains_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for cmd in ("generate", "animate", "interpolate", "extend", "describe", "init"):
        assert cmd in text


def test_optimize_flag_keeps_the_video(tiny_model_dir, tmp_path):
    """`--optimize` switches the fast paths on (on the CPU: fused projections, channels-last frames) and
    gives the same video within rounding, through the video and the interpolation weights."""
    from emu_video.models.temporal import TemporalConv
    from emu_video.pipelines import TextToVideoPipeline
    from emu_video.pipelines.components import EmuVideoComponents

    plain = EmuVideoComponents.from_pretrained(tiny_model_dir)
    plain.unet.set_fast_paths(False)
    fast = EmuVideoComponents.from_pretrained(tiny_model_dir).optimize_for_inference()
    assert fast.unet.channels_last and not plain.unet.channels_last
    assert all(m.fast_path for m in fast.unet.modules() if isinstance(m, TemporalConv))
    kw = dict(seed=3, num_frames=8, progress=False)
    a = TextToVideoPipeline(plain)("a red circle moves left", **kw).frames.astype(int)
    b = TextToVideoPipeline(fast)("a red circle moves left", **kw).frames.astype(int)
    assert a.shape == b.shape == (37, *a.shape[1:])
    diff = np.abs(a - b)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01

    out = tmp_path / "o.mp4"
    assert main(["generate", "a red circle moves left", "--model", str(tiny_model_dir), "--out", str(out),
                 "--frames", "8", "--optimize", "--quiet"]) == 0
    assert probe_video(out)["frames"] == 37


def test_speed_lever_flags(tiny_model_dir, tmp_path, capsys):
    m = ["--model", str(tiny_model_dir), "--quiet", "--frames", "8"]
    plain, fast = tmp_path / "plain.mp4", tmp_path / "fast.mp4"
    assert main(["generate", "a red circle moves left", "--out", str(plain), *m]) == 0
    assert main(["generate", "a red circle moves left", "--out", str(fast), "--cfg-truncation", "0.5",
                 "--cfg-truncation-keep", "text", "--cache-interval", "2", "--quantize", "int8", *m]) == 0
    assert read_video(fast).frames.shape == read_video(plain).frames.shape
    for bad in (["--cfg-truncation", "1.5"], ["--cache-interval", "0"], ["--quantize", "int8", "--dtype", "bfloat16"],
                ["--quantize", "int8", "--device", "cuda"]):
        assert main(["generate", "x", "--out", str(tmp_path / "bad.mp4"), *m, *bad]) == 2
        assert "error" in capsys.readouterr().err
