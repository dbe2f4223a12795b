import json

import pytest

import emu_video.pipelines
from emu_video.cli.main import main
from emu_video.io.video import probe_video, read_image, read_video
from emu_video.shapes import judge
from emu_video.shapes.grammar import parse_prompt, scene_from_prompt
from emu_video.shapes.render import render


def test_render_then_judge(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    prompt = "An orange ball slides to the left and a blue box grows on a grey background."
    assert main(["shapes", "render", prompt, "--seed", "4", "--out", str(out), "--gif",
                 "--image", str(tmp_path / "first.png")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["caption"] == "an orange circle moves left and a blue square grows on a gray background"
    info = probe_video(out)
    assert (info["frames"], info["fps"], info["codec"], info["pix_fmt"]) == (65, 16.0, "h264", "yuv420p")
    assert read_video(tmp_path / "clip.gif").frames.shape == (65, 128, 128, 3)
    assert read_image(tmp_path / "first.png").shape == (128, 128, 3)

    assert main(["shapes", "judge", str(out), "--prompt", prompt]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["faithful"] is True and report["num_frames"] == 65

    # A wrong prompt is judged unfaithful but still exits 0.
    assert main(["shapes", "judge", str(out), "--prompt", "a red circle moves up", "--compact"]) == 0
    assert json.loads(capsys.readouterr().out)["faithful"] is False


def test_render_gif_only(tmp_path):
    assert main(["shapes", "render", "a white triangle rises", "--out", str(tmp_path / "t.gif")]) == 0
    assert read_video(tmp_path / "t.gif").frames.shape[0] == 65


def test_errors_exit_2(tmp_path, capsys):
    assert main(["shapes", "judge", str(tmp_path / "missing.mp4"), "--prompt", "a red circle"]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    assert main(["shapes", "judge", str(tmp_path / "junk.mp4"), "--prompt", "a red circle"]) == 2
    assert main(["shapes", "render", "a red dragon flies", "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert "'dragon'" in err and "'flies'" in err
    assert main(["shapes", "render", "a red circle", "--out", str(tmp_path / "x.avi")]) == 2


def test_make_dataset_command(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["shapes", "make-dataset", "--out", str(out), "--videos", "3", "--images", "4", "--seed", "1",
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == 4
    rows = [json.loads(x) for x in (out / "videos.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and probe_video(out / rows[2]["path"])["frames"] == 65
    assert len((out / "images.jsonl").read_text().splitlines()) == 4
    assert main(["shapes", "make-dataset", "--out", str(out), "--videos", "1", "--images", "0"]) == 2
    moving = tmp_path / "moving"
    assert main(["shapes", "make-dataset", "--out", str(moving), "--videos", "0", "--images", "8",
                 "--image-two-objects", "0.5", "--motion-captions", "1", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["image_motion_captions"] == 1.0 and summary["image_two_object_fraction"] == 0.5
    rows = [json.loads(x) for x in (moving / "images.jsonl").read_text().splitlines()]
    assert sum(len(r["scene"]["objects"]) == 2 for r in rows) == 4
    for r in rows:  # every caption names each object's motion, and the image is judged to match it
        assert all(parse_prompt(r["caption"]).objects[i].motion == o["motion"]
                   for i, o in enumerate(r["scene"]["objects"]))
        assert judge(read_image(moving / r["path"]), r["caption"])["faithful"]


class _FakePipeline:
    calls = []

    @classmethod
    def from_pretrained(cls, model_dir=None, device=None, dtype=None):
        cls.calls.append(("load", model_dir, device, dtype))
        return cls()

    def __call__(self, prompt, seed=0, num_inference_steps=None, **guidance):
        self.calls.append(("call", prompt, seed, num_inference_steps, guidance))
        frames = render(scene_from_prompt(prompt, seed))

        class Out:
            pass

        out = Out()
        out.frames, out.fps = frames, 16
        return out


def test_evaluate_command_with_a_pipeline(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(emu_video.pipelines, "TextToVideoPipeline", _FakePipeline, raising=False)
    _FakePipeline.calls.clear()
    code = main(["shapes", "evaluate", "--set", "eval-seen", "--set", "eval-two", "--limit", "3", "--steps", "7",
                 "--w-txt", "3.5", "--interp-steps", "4", "--seed-offset", "5", "--device", "cpu",
                 "--out", str(tmp_path / "ev"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.rindex("}") + 1])
    assert set(summary["sets"]) == {"eval-seen", "eval-two"}
    assert summary["sets"]["eval-seen"]["faithful"] == 1.0 and summary["sets"]["eval-two"]["num_clips"] == 3
    assert "eval-two" in out[out.rindex("}") :]  # the table follows the JSON
    assert _FakePipeline.calls[0] == ("load", None, "cpu", None)
    calls = [c for c in _FakePipeline.calls if c[0] == "call"]
    assert len(calls) == 6 and calls[0][2] == 1005 and calls[0][3] == 7
    # only the settings given are passed, and no progress bar per clip
    assert calls[0][4] == {"w_txt": 3.5, "interpolation_steps": 4, "progress": False}
    assert summary["settings"] == {"num_inference_steps": 7, "interpolation_steps": 4, "w_txt": 3.5}
    assert (tmp_path / "ev" / "eval-seen" / "reports.jsonl").exists()
    assert (tmp_path / "ev" / "summary.json").exists()
    assert main(["shapes", "evaluate", "--set", "eval-bogus"]) == 2


def test_evaluate_refuses_bad_arguments_before_loading_the_model(tmp_path, capsys, monkeypatch):
    def no_load(*args, **kwargs):
        pytest.fail("the model was loaded")

    monkeypatch.setattr(emu_video.pipelines.TextToVideoPipeline, "from_pretrained", no_load)
    (tmp_path / "a_file").write_text("x")
    for args, message in [(["--steps", "0"], "--steps must be at least 1"),
                          (["--interp-steps", "-1"], "--interp-steps must be at least 1"),
                          (["--w-txt", "nan"], "--w-txt must be a finite number"),
                          (["--device", "foo"], "is not a torch device"),
                          (["--out", str(tmp_path / "a_file" / "ev")], "not a writable folder")]:
        assert main(["shapes", "evaluate", "--limit", "1", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_help_texts(capsys):
    for cmd in (["shapes"], ["shapes", "render"], ["shapes", "judge"], ["shapes", "make-dataset"],
                ["shapes", "evaluate"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*cmd, "--help"])
        assert exit_info.value.code == 0
        assert "usage" in capsys.readouterr().out
