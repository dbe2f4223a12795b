import json

import numpy as np
import pytest

from emu_video.io.video import probe_video, read_video, write_video
from emu_video.shapes import palette as P
from emu_video.shapes.grammar import MOTION_PHRASES, caption, scene_from_prompt
from emu_video.shapes.judge import classify_pixels, judge
from emu_video.shapes.render import render, render_image
from emu_video.shapes.scene import random_scene
from emu_video.shapes.validate import format_validation, validate_judge


def test_judge_agrees_with_ground_truth_on_hundreds_of_clips():
    result = validate_judge(240, seed=123)
    for attribute, agreement in result["agreement"].items():
        assert agreement >= 0.99, (attribute, format_validation(result))
    assert set(result["per_motion"]) == set(P.MOTIONS)
    for attribute, rate in result["rejection"].items():  # captions with one attribute changed
        assert rate >= 0.99, (attribute, format_validation(result))


def test_h264_clips_read_back_and_judged_faithful(tmp_path):
    rng = np.random.default_rng(7)
    for k, motion in enumerate(P.MOTIONS * 2):
        scene = random_scene(rng, num_objects=1 + k // len(P.MOTIONS), motions=[motion])
        path = tmp_path / f"{k}.mp4"
        write_video(path, render(scene), P.FPS)
        info = probe_video(path)
        assert (info["frames"], info["fps"], info["width"], info["height"]) == (65, 16.0, 128, 128)
        video = read_video(path)
        assert video.frames.shape == (65, 128, 128, 3) and video.fps == 16.0
        report = judge(path, caption(scene))
        assert report["faithful"], json.dumps(report, indent=1)
        assert report["num_frames"] == 65 and report["fps"] == 16.0


def test_report_structure_is_json_serialisable():
    scene = scene_from_prompt("a red circle moves left and a blue square grows on a gray background", 0)
    report = judge(render(scene), caption(scene))
    json.dumps(report)
    assert report["faithful"] is True
    assert len(report["objects"]) == 2
    for o in report["objects"]:
        for key in ("found", "color", "shape", "motion", "temporal"):
            assert "ok" in o[key]
        assert o["motion"]["dx"] is not None and o["shape"]["fill_ratio"] is not None
    assert report["background"] == {"expected": "gray", "detected": "gray", "ok": True,
                                     "fraction": report["background"]["fraction"]}
    assert report["temporal"]["flicker_free"] is True and report["temporal"]["consistent_fraction"] == 1.0


def test_wrong_attributes_are_caught():
    frames = render(scene_from_prompt("a red circle moves left on a black background", 3))
    r = judge(frames, "a blue circle moves left on a black background")
    o = r["objects"][0]
    assert not r["faithful"] and o["found"]["ok"] and not o["color"]["ok"] and o["color"]["detected"] == "red"
    r = judge(frames, "a red square moves left on a black background")
    assert not r["faithful"] and r["objects"][0]["shape"]["detected"] == "circle"
    r = judge(frames, "a red triangle moves left on a black background")
    assert not r["faithful"] and not r["objects"][0]["shape"]["ok"]
    r = judge(frames, "a red circle moves left on a beige background")
    assert not r["faithful"] and r["background"]["detected"] == "black"
    r = judge(frames, "a red circle moves left")
    assert r["faithful"] and r["background"]["ok"] is None


@pytest.mark.parametrize("true_motion", P.MOTIONS)
def test_motions_are_told_apart(true_motion):
    frames = render(scene_from_prompt(f"a green triangle {MOTION_PHRASES[true_motion][0]}", 11))
    for motion in P.MOTIONS:
        r = judge(frames, f"a green triangle {MOTION_PHRASES[motion][0]}")
        assert r["objects"][0]["motion"]["ok"] is (motion == true_motion), (true_motion, motion, r["objects"][0]["motion"])
    assert r["objects"][0]["motion"]["detected"] == true_motion


def test_missing_object_and_second_object():
    empty = np.empty((65, 128, 128, 3), np.uint8)
    empty[:] = P.BACKGROUNDS["gray"]
    r = judge(empty, "a red circle moves left on a gray background")
    assert not r["faithful"] and not r["objects"][0]["found"]["ok"] and r["background"]["ok"]
    speckle = empty.copy()
    speckle[:, ::2, ::2] = P.OBJECT_COLORS["red"]  # many red pixels, no region of 30 px
    r = judge(speckle, "a red circle stays still on a gray background")
    assert not r["objects"][0]["found"]["ok"] and r["objects"][0]["shape"]["ok"] is False
    one = render(scene_from_prompt("a red circle moves up on a black background", 0))
    r = judge(one, "a red circle moves up and a white square moves down on a black background")
    assert r["objects"][0]["found"]["ok"] and not r["objects"][1]["found"]["ok"] and not r["faithful"]


def test_images_and_other_sizes_and_rates():
    scene = scene_from_prompt("an orange box on a beige background", 2)
    img = render_image(scene)
    r = judge(img, "an orange square on a beige background")
    assert r["faithful"] and r["num_frames"] == 1
    r = judge(img, "an orange square moves left on a beige background")
    assert r["faithful"] and r["objects"][0]["motion"]["ok"] is None  # one frame: motion not judged
    for i in range(8):
        sc = random_scene(i, num_objects=1 + i % 2)
        assert judge(render(sc, size=64), caption(sc))["faithful"]  # thresholds scale with the frame size
        assert judge(render(sc)[::4], caption(sc), fps=4)["faithful"]  # the base model's 4 fps frames


def test_flicker_and_temporal_consistency():
    frames = render(scene_from_prompt("a purple circle stays still on a gray background", 4)).copy()
    frames[1::2] = np.clip(frames[1::2].astype(int) + 25, 0, 255).astype(np.uint8)
    r = judge(frames, "a purple circle stays still on a gray background")
    assert r["temporal"]["flicker_free"] is False and r["temporal"]["flicker"] > 10
    frames = render(scene_from_prompt("a purple circle stays still on a gray background", 4)).copy()
    frames[30:35] = P.BACKGROUNDS["gray"]  # the object vanishes for 5 frames
    r = judge(frames, "a purple circle stays still on a gray background")
    assert r["objects"][0]["temporal"]["consistent_fraction"] == pytest.approx(60 / 65, abs=1e-3)
    assert r["objects"][0]["temporal"]["ok"] is False


def test_pixel_classification_threshold():
    # 34 * sqrt(3) = 58.9 is under the distance 60, 35 * sqrt(3) = 60.6 is not.
    px = np.array([[[[220, 40, 40], [254, 74, 6], [255, 75, 5], [100, 100, 100], [128, 200, 255]]]], np.uint8)
    labels = classify_pixels(px)[0, 0]
    red, gray = P.PALETTE_NAMES.index("red"), P.PALETTE_NAMES.index("gray")
    assert [int(v) for v in labels] == [red, red, -1, gray, -1]
