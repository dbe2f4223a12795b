"""The demo's model runs on a tiny random model: real H.264 mp4 and GIF files, the CLI's refusals and notes,
one run at a time, old runs removed."""

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from emu_video.demo.runs import DemoModel, Sampling, example_prompts
from emu_video.errors import UserError
from emu_video.io.video import Video, probe_video, read_video
from emu_video.pipelines import EmuVideoComponents
from emu_video.shapes.evalsets import EVAL_SET_NAMES, load_eval_set
from emu_video.shapes.grammar import parse_prompt

FAST = Sampling(seed=3, steps=1, sampler="ddim", w_img=2.0, w_txt=5.0)


def _video(n, fps, size=16, seed=0):
    return Video(np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8), fps)


@pytest.fixture(scope="module")
def model(tiny_model_dir, tmp_path_factory):
    return DemoModel(EmuVideoComponents.from_pretrained(tiny_model_dir), tmp_path_factory.mktemp("runs"), keep=3)


def test_text_to_video_hands_over_the_first_frame_and_writes_mp4_and_gif(model):
    firsts = []
    result = model.text_to_video("a red circle moves left", FAST, frames=8, interp_steps=1,
                                 on_first_frame=firsts.append)
    assert len(firsts) == 1 and firsts[0].shape == (16, 16, 3)
    info = probe_video(result.mp4)
    assert (info["codec"], info["pix_fmt"], info["frames"], info["fps"]) == ("h264", "yuv420p", 37, 16.0)
    gif = read_video(result.gif)
    assert gif.num_frames == 37 and abs(gif.fps - 16.0) < 1.0  # GIF delays are whole centiseconds
    assert result.summary() == "37 frames at 16 fps (2.31 s), 16x16"
    assert result.mp4.name == "a-red-circle-moves-left-seed3.mp4"


def test_interpolate_extend_and_their_notes(model):
    result = model.interpolate(_video(8, 4), "", FAST)
    assert (result.num_frames, result.fps) == (37, 16.0) and probe_video(result.mp4)["frames"] == 37
    extended = model.extend(_video(17, 16), "then it stops", FAST, past=4, new=4)
    assert extended.num_frames == 5 + 4 and probe_video(extended.mp4)["fps"] == 4.0
    assert any("the 17 frames at 16 fps became 5 at 4 fps, followed by 4 new ones" in n for n in extended.notes)
    animated = model.animate(_video(1, 4).frames[0], "it moves", FAST, frames=8, last_image=_video(1, 4, seed=1).frames[0])
    assert animated.num_frames == 8
    assert any("no keyframes weights" in n for n in animated.notes)  # sampled with the image-to-video weights


def test_refusals_are_the_command_lines(model):
    with pytest.raises(UserError, match="the prompt is empty"):
        model.text_to_video("  ", FAST, frames=8)
    with pytest.raises(UserError, match="8"):  # the interpolation model takes 8k frames
        model.text_to_video("a red circle", FAST, frames=12)
    with pytest.raises(UserError, match="probably interpolated already"):
        model.interpolate(_video(65, 16), "", FAST)
    with pytest.raises(UserError, match="--steps must be at least 1"):
        model.extend(_video(8, 4), "x", Sampling(0, 0, "ddim", 2.0, 5.0))
    with pytest.raises(UserError, match="must be a finite number"):
        model.animate(_video(1, 4).frames[0], "x", Sampling(0, 1, "ddim", float("nan"), 5.0), frames=8)


def test_one_run_at_a_time_and_old_runs_removed(model):
    real = model.interpolate_pipe
    running, most = [0], [0]

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def __call__(self, *args, **kwargs):
            running[0] += 1
            most[0] = max(most[0], running[0])
            time.sleep(0.2)  # room for another run to start if nothing stopped it
            try:
                return real(*args, **kwargs)
            finally:
                running[0] -= 1

    model.interpolate_pipe = Spy()
    try:
        threads = [threading.Thread(target=model.interpolate, args=(_video(8, 4, seed=i), "", FAST)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        model.interpolate_pipe = real
    assert most[0] == 1
    runs = sorted(p.name for p in model.outputs.iterdir())
    assert len(runs) == 3 and all((model.outputs / r).is_dir() for r in runs)  # keep=3: the oldest are gone


def test_example_prompts_are_shapes_world_evaluation_prompts():
    prompts = example_prompts(SimpleNamespace(index=SimpleNamespace(domain="shapes_world")))
    every = {item.prompt for name in EVAL_SET_NAMES for item in load_eval_set(name)}
    assert len(prompts) == 6 and set(prompts) <= every
    for prompt in prompts:
        parse_prompt(prompt)  # in the grammar: no out-of-domain warning
    assert sum(" and " in p for p in prompts) == 2  # two of them from the two-object set
    assert example_prompts(SimpleNamespace(index=SimpleNamespace(domain=None))) == []
