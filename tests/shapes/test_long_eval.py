"""Judging long videos and keyframe videos: checked on clips the renderer draws, where the truth is known."""

import numpy as np

from emu_video.shapes.continuation import continued, render_continuation
from emu_video.shapes.grammar import parse_prompt, scene_from_prompt
from emu_video.shapes.long_eval import (
    judge_long_video,
    segment_prompts,
    summary_table,
    travel_check,
)
from emu_video.shapes.render import render

PROMPT = "a red circle moves left on a black background"


def test_segment_prompts_alternate_the_motions():
    prompts = segment_prompts("a blue triangle moves up and a green circle grows on a gray background", 3)
    motions = [[o.motion for o in parse_prompt(p).objects] for p in prompts]
    assert motions == [["up", "grow"], ["down", "shrink"], ["up", "grow"]]
    assert all(parse_prompt(p).background == "gray" for p in prompts)


def _two_segment_video(seed=3):
    """4 s of moving left, then 3 s of moving right from there (16 fps), as a chained video is laid out."""
    scene = scene_from_prompt(PROMPT, seed=seed)
    after = continued(scene, 64, ["right"])
    frames = np.concatenate([render(scene), render(after, frames=np.arange(1, 49))])
    assert np.array_equal(frames[:65], render_continuation(scene, after, 64))
    segments = [{"prompt": PROMPT, "start": 0, "end": 65},
                {"prompt": PROMPT.replace("left", "right"), "start": 65, "end": 113}]
    return frames, segments


def test_a_rendered_long_video_keeps_its_object_and_follows_each_prompt():
    frames, segments = _two_segment_video()
    rep = judge_long_video(frames, 16.0, segments)
    assert rep["kept_all"] and rep["motion_share"] == 1.0
    assert rep["last_color_drift"] < 3  # the same colour drawn on the same background
    # the turn is steady motion: no more second-difference flicker at the seam than in the segments
    assert rep["seam_flicker"] < 2 * rep["inner_flicker"] + 0.5

    wrong = [dict(segments[0]), {**segments[1], "prompt": PROMPT}]  # segment 2 asked to go on left
    assert judge_long_video(frames, 16.0, wrong)["motion_share"] == 0.5


def test_colour_drift_and_a_lost_identity_are_caught():
    frames, segments = _two_segment_video()
    drifted = frames.copy()
    red = (np.abs(drifted.astype(int) - [220, 40, 40]).sum(-1) < 30)
    late = np.zeros(len(frames), bool)
    late[65:] = True
    drifted[red & late[:, None, None]] = [235, 140, 30]  # the circle turns orange in segment 2
    rep = judge_long_video(drifted, 16.0, segments)
    assert not rep["kept_all"] and rep["kept_share"] == 0.5
    flicked = frames.copy()
    flicked[65] = 255 - flicked[65]  # one inverted frame right at the seam
    assert judge_long_video(flicked, 16.0, segments)["seam_flicker"] > 5 * judge_long_video(
        frames, 16.0, segments)["seam_flicker"]


def test_travel_check_on_rendered_keyframe_clips():
    scene = scene_from_prompt(PROMPT, seed=5)
    obj = scene.objects[0]
    clip = render(scene, frames=np.arange(0, 61, 4))  # 16 frames at 4 fps
    start, end = obj.centres()[0], obj.centres()[60]
    assert travel_check(clip, PROMPT, start, end, 4.0)["ok"]
    jump = np.concatenate([clip[:1].repeat(8, 0), clip[-1:].repeat(8, 0)])  # no travel: a cut halfway
    rep = travel_check(jump, PROMPT, start, end, 4.0)
    assert rep["ends_ok"] and not rep["travels"]
    assert not travel_check(clip[::-1], PROMPT, start, end, 4.0)["ends_ok"]  # the wrong way round


def test_summary_table_has_one_line_per_setting():
    frames, segments = _two_segment_video()
    rep = judge_long_video(frames, 16.0, segments)
    rows = [{"check": "long", "model": "m", "weights": "extension", "anchor": a, "segments": 2, "frames": 113, **rep}
            for a in ("first", "none", "none")]
    rows.append({"check": "keyframes", "model": "m", "weights": "keyframes", "kept": True, "motion_ok": True,
                 "ends_ok": False, "travels": False})
    table = summary_table(rows)
    assert "| m | extension | first | 2 | 113 | 1 | 100.0 | 100.0 | 100.0 |" in table
    assert "| m | extension | none | 2 | 113 | 2 |" in table
    assert "| m | keyframes | 1 | 100.0 | 100.0 | 0.0 | 0.0 |" in table
