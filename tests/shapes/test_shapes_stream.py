"""Shapes World rendered on the fly for training: the data contract, determinism, the held-out pairs."""

import numpy as np
import torch

from emu_video.data.frames import ClipSpec, model_pixels, to_model_pixels
from emu_video.shapes import palette as P
from emu_video.shapes.datasets import (
    IMAGE_TWO_OBJECT_FRACTION,
    VIDEO_TWO_OBJECT_FRACTION,
    image_sample,
    video_sample,
    video_scene,
)
from emu_video.shapes.grammar import parse_prompt
from emu_video.shapes.render import render
from emu_video.shapes.stream import ShapesWorldDataset
from emu_video.training.config import ShapesSection


def test_video_items_follow_the_clip_spec_and_match_the_renderer():
    ds = ShapesWorldDataset("video", 64, ClipSpec(16, 4.0, "first"), seed=3)
    item = ds[(0, 5)]
    assert item["pixels"].shape == (3, 16, 64, 64) and item["index"] == 5
    assert item["pixels"].dtype == torch.uint8  # rendered at its own size: travels as bytes
    ref = video_sample(3, 5, frames=np.arange(0, 61, 4), size=64)
    torch.testing.assert_close(model_pixels(item["pixels"]), to_model_pixels(ref.frames, 64))
    assert item["caption"] == ref.caption
    assert torch.equal(ds[(0, 5)]["pixels"], item["pixels"])  # the same key gives the same sample
    assert not torch.equal(ds[(1, 5)]["pixels"], item["pixels"])  # a new epoch draws new scenes


def test_interpolation_clips_and_images():
    clip = ShapesWorldDataset("video", 128, ClipSpec(37, 16.0, "random"))[(0, 2)]
    assert clip["pixels"].shape == (3, 37, 128, 128)
    image = ShapesWorldDataset("image", 128)[(0, 7)]
    assert image["pixels"].shape == (3, 128, 128)
    assert image["caption"] == image_sample(0, 7).caption


def test_video_stream_never_holds_a_heldout_pair():
    for i in range(400):
        for obj in video_scene(0, i).objects:
            assert (obj.color, obj.shape) not in P.HELDOUT_PAIRS


def test_resolutions_above_the_native_size_are_resized_floats():
    item = ShapesWorldDataset("image", 192)[(0, 1)]
    assert item["pixels"].dtype == torch.float32 and item["pixels"].shape == (3, 192, 192)
    torch.testing.assert_close(item["pixels"], to_model_pixels(image_sample(0, 1).image, 192))


def test_the_config_defaults_are_the_dataset_shares():
    assert ShapesSection().video_two_objects == VIDEO_TWO_OBJECT_FRACTION
    assert ShapesSection().image_two_objects == IMAGE_TWO_OBJECT_FRACTION
    assert ShapesWorldDataset("image", 64).two_object_fraction == IMAGE_TWO_OBJECT_FRACTION


def test_two_object_share_and_motion_captions():
    ds = ShapesWorldDataset("image", 64, two_object_fraction=0.5, motion_captions=0.5)
    parsed = [parse_prompt(ds[(0, i)]["caption"]) for i in range(200)]
    assert sum(len(p.objects) == 2 for p in parsed) == 100
    moving = [p for p in parsed if p.objects[0].motion is not None]
    assert 70 <= len(moving) <= 130  # about half name a motion, and then for every object
    assert all(o.motion is not None for p in moving for o in p.objects)
    for i in range(40):  # the caption names the drawn scene, motions included
        s, p = image_sample(0, i, 0.5, motion_captions=0.5), parse_prompt(ds[(0, i)]["caption"])
        assert [(o.color, o.shape) for o in s.scene.objects] == [(o.color, o.shape) for o in p.objects]
        assert all(p.objects[0].motion is None or o.motion == q.motion for o, q in zip(s.scene.objects, p.objects))
        assert not s.scene.problems()  # placed so that the whole clip of those motions stays valid
        assert np.array_equal(s.image, render(s.scene, frames=[0])[0])
    assert all(parse_prompt(image_sample(0, i).caption).objects[0].motion is None for i in range(50))
    video = ShapesWorldDataset("video", 64, ClipSpec(16, 4.0, "first"), two_object_fraction=1.0)
    assert all(len(parse_prompt(video[(0, i)]["caption"]).objects) == 2 for i in range(5))
