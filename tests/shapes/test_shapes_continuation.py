"""Continuation clips (extension training data): the motion changes after the past frames, the caption names
the new motions, and the Shapes World judge reads those motions back from the rendered frames."""

import numpy as np
import pytest
import torch

from emu_video.data.frames import ClipSpec
from emu_video.shapes import judge
from emu_video.shapes import palette as P
from emu_video.shapes.continuation import continuation_sample, render_continuation
from emu_video.shapes.datasets import video_sample
from emu_video.shapes.grammar import parse_prompt
from emu_video.shapes.render import render
from emu_video.shapes.stream import ShapesWorldDataset

CHANGE = 12  # the last past frame of a 16-frame 4 fps clip with 4 past frames


def test_changed_clips_follow_the_new_motion_from_the_change_frame():
    samples = [continuation_sample(0, i, CHANGE, change=1.0) for i in range(40)]
    changed = [s for s in samples if s.changed]
    assert len(changed) >= 30
    ok = total = 0
    for s in changed:
        parsed = parse_prompt(s.caption)
        assert [o.motion for o in parsed.objects] == [o.motion for o in s.after.objects]
        assert any(a.motion != b.motion for a, b in zip(s.before.objects, s.after.objects))
        # up to the change frame the clip is the original scene, after it the continued one
        assert np.array_equal(s.frames[: CHANGE + 1], render(s.before, frames=np.arange(CHANGE + 1)))
        assert np.array_equal(s.frames[CHANGE:], render(s.after, frames=np.arange(P.NUM_FRAMES - CHANGE)))
        rep = judge(s.frames[CHANGE:], s.caption, fps=16)  # the judge, not the scene, reads the new motions
        ok += sum(bool(o["motion"]["ok"]) for o in rep["objects"])
        total += len(rep["objects"])
    assert ok / total >= 0.9


def test_unchanged_clips_are_the_ordinary_video_samples():
    frames = np.arange(0, 61, 4)
    for i in range(6):
        s = continuation_sample(2, i, CHANGE, change=0.0, frames=frames, size=64)
        assert not s.changed
        assert np.array_equal(s.frames, video_sample(2, i, frames=frames, size=64).frames)
        assert [o.motion for o in parse_prompt(s.caption).objects] == [o.motion for o in s.before.objects]


def test_render_continuation_takes_any_frames():
    s = continuation_sample(1, 3, CHANGE, change=1.0)
    assert np.array_equal(render_continuation(s.before, s.after, CHANGE, frames=[0, 40, 12]),
                          s.frames[[0, 40, 12]])


def test_stream_changes_motion_after_the_past_frames():
    spec = ClipSpec(16, 4.0, "first")
    ds = ShapesWorldDataset("video", 64, spec, seed=5, past_frames=4, motion_change=0.5)
    item = ds[(0, 7)]
    ref = continuation_sample(5, 7, CHANGE, 0.5, frames=np.arange(0, 61, 4), size=64,
                              two_object_fraction=ds.two_object_fraction)
    assert item["caption"] == ref.caption
    assert torch.equal(item["pixels"], torch.from_numpy(ref.frames).permute(3, 0, 1, 2))
    with pytest.raises(ValueError, match="past_frames"):
        ShapesWorldDataset("video", 64, spec, past_frames=16, motion_change=0.5)
