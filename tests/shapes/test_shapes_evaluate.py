import json

import numpy as np
import pytest

from emu_video.errors import UserError
from emu_video.shapes import palette as P
from emu_video.shapes.evalsets import EVAL_SET_NAMES, build_eval_set_v1, load_eval_set
from emu_video.shapes.evaluate import evaluate_set, format_table, summarize_reports
from emu_video.shapes.grammar import parse_prompt, scene_from_prompt
from emu_video.shapes.render import render


def ground_truth(prompt, seed):
    return render(scene_from_prompt(prompt, seed)), 16


def test_eval_sets_load_and_follow_their_definitions():
    for name in EVAL_SET_NAMES:
        s = load_eval_set(name)
        assert s.name == name and s.version == 1 and len(s) >= 60
        assert len({(i.prompt, i.seed) for i in s}) == len(s)
        # The stored files are what the v1 recipe draws.
        assert [{"prompt": i.prompt, "seed": i.seed} for i in s] == build_eval_set_v1(name)["items"]
        for item in s:
            p = parse_prompt(item.prompt)
            assert p.background is not None
            assert scene_from_prompt(item.prompt, item.seed).problems() == []
            pairs = {(o.color, o.shape) for o in p.objects}
            if name == "eval-seen":
                assert len(p.objects) == 1 and not pairs & P.HELDOUT_PAIRS
            elif name == "eval-heldout":
                assert len(p.objects) == 1 and pairs <= P.HELDOUT_PAIRS
            else:
                assert len(p.objects) == 2
        motions = {o.motion for item in s for o in parse_prompt(item.prompt).objects}
        assert motions == set(P.MOTIONS)
    heldout = {(o.color, o.shape) for i in load_eval_set("eval-heldout") for o in parse_prompt(i.prompt).objects}
    assert heldout == P.HELDOUT_PAIRS
    with pytest.raises(UserError):
        load_eval_set("eval-nope")
    with pytest.raises(UserError):
        load_eval_set("eval-seen", version=99)


def test_ground_truth_scores_full_marks(tmp_path):
    scores = evaluate_set("eval-two", ground_truth, progress=False, limit=20, out_dir=tmp_path / "two")
    assert scores["num_clips"] == 20 and scores["set"] == "eval-two" and scores["version"] == 1
    for key in ("faithful", "found", "color", "shape", "motion", "background", "temporal_consistency"):
        assert scores[key] >= 0.99, (key, scores[key])
    assert all(c["faithful"] and c["failed"] == [] for c in scores["clips"])
    reports = [json.loads(line) for line in (tmp_path / "two" / "reports.jsonl").read_text().splitlines()]
    assert len(reports) == 20 and reports[0]["video"] == "videos/000.mp4"
    assert (tmp_path / "two" / "videos" / "019.mp4").exists()
    assert json.loads((tmp_path / "two" / "scores.json").read_text())["faithful"] == scores["faithful"]
    table = format_table(scores)
    assert "eval-two" in table and "100.0" in table


def test_ground_truth_scores_on_every_set():
    for name in ("eval-seen", "eval-heldout"):
        scores = evaluate_set(name, ground_truth, progress=False, limit=15)
        assert scores["faithful"] == 1.0


def test_wrong_content_scores_low():
    def wrong(prompt, seed):
        return render(scene_from_prompt("a white triangle sinks on a gray background", seed)), 16

    scores = evaluate_set("eval-seen", wrong, progress=False, limit=20)
    assert scores["faithful"] <= 0.1
    assert scores["color"] <= 0.1

    def blank(prompt, seed):
        return np.zeros((65, 128, 128, 3), np.uint8), 16

    scores = evaluate_set("eval-two", blank, progress=False, limit=5, seed_offset=100)
    assert scores["faithful"] == 0.0 and scores["found"] == 0.0
    assert scores["clips"][0]["seed"] == load_eval_set("eval-two").items[0].seed + 100
    assert "found[0]" in scores["clips"][0]["failed"]


def test_summaries_and_table_of_several_sets():
    assert summarize_reports([])["faithful"] is None
    rows = [evaluate_set(n, ground_truth, progress=False, limit=2) for n in EVAL_SET_NAMES]
    table = format_table(rows)
    assert all(n in table for n in EVAL_SET_NAMES)
    assert len(table.splitlines()) == 2 + len(rows) + 1
