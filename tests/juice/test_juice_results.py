"""Results of a study with known votes: majority, win rates, agreement, kappa, reasons, exports and plot."""

import contextlib
import csv
import json
import sqlite3

import pytest

from emu_video.cli.main import main
from emu_video.juice.results import compute_results, export_results

# prompt id -> (quality votes for A, faithfulness votes for A), five raters each; p004 has only two votes.
PLAN = {"p000": (5, 0), "p001": (4, 4), "p002": (3, 5), "p003": (1, 2), "p004": (2, 1)}
Q_REASONS = {"a": ["pixel_sharpness"], "b": ["frame_consistency", "motion_smoothness"]}
F_REASONS = {"a": ["spatial_alignment"], "b": ["spatial_alignment", "temporal_alignment"]}


def seed_votes(study):
    """Insert the votes of PLAN directly: rater k votes A on an axis when k < that pair's A count."""
    raters = study.add_raters(5)
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn, conn:
        rater_ids = [conn.execute("SELECT id FROM raters WHERE label = ?", (lab,)).fetchone()[0] for lab, _ in raters]
        for pid, (qa, fa) in PLAN.items():
            pair = conn.execute("SELECT id FROM pairs WHERE prompt_id = ?", (pid,)).fetchone()[0]
            n_votes = 2 if pid == "p004" else 5
            for k in range(n_votes):
                left = "a" if k % 2 == 0 else "b"
                q, f = ("a" if k < qa else "b"), ("a" if k < fa else "b")
                cur = conn.execute(
                    "INSERT INTO tasks (key, rater_id, pair_id, left_system, status, assigned_at, seen_at) "
                    "VALUES (?, ?, ?, ?, 'done', 0, 0)",
                    (f"task{pid}{k}xxxxxxx", rater_ids[k], pair, left),
                )
                vote = conn.execute(
                    "INSERT INTO votes (task_id, rater_id, pair_id, left_system, quality, faithfulness, submitted_at, "
                    "seconds) VALUES (?, ?, ?, ?, ?, ?, 1700000000, 12.5)",
                    (cur.lastrowid, rater_ids[k], pair, left, q, f),
                ).lastrowid
                conn.executemany(
                    "INSERT INTO vote_reasons (vote_id, axis, reason) VALUES (?, ?, ?)",
                    [(vote, "quality", r) for r in Q_REASONS[q]] + [(vote, "faithfulness", r) for r in F_REASONS[f]],
                )


def test_compute_results_by_hand(make_study):
    study, _ = make_study(pairs=5)
    seed_votes(study)
    res = compute_results(study)
    assert (res["pairs"], res["pairs_complete"], res["pairs_incomplete"], res["votes"]) == (5, 4, 1, 22)

    q = res["axes"]["quality"]
    # Complete pairs: A votes 5, 4, 3, 1 -> A wins 3 of 4; complete 1, partial 2 (4|1, 1|4), split 1.
    assert (q["wins_a"], q["wins_b"], q["pairs"]) == (3, 1, 4)
    assert q["win_rate_a"] == 0.75 and q["win_rate_b"] == 0.25
    assert q["win_rate_a_ci95"] == pytest.approx([0.3006, 0.9544], abs=1e-4)
    assert q["win_rate_b_ci95"] == pytest.approx([1 - 0.9544, 1 - 0.3006], abs=1e-4)
    assert q["agreement"] == {"complete": 1, "partial": 2, "split": 1}
    # P_i = 1, .6, .4, .6 -> P_bar = .65; p_A = 13/20 -> P_e = .545; kappa = .105 / .455 = 3/13.
    assert q["fleiss_kappa"] == pytest.approx(3 / 13)
    assert (q["votes_a"], q["votes_b"]) == (13, 7)
    reasons = {r["reason"]: r for r in q["reasons"]}
    assert reasons["pixel_sharpness"]["count_a"] == 13 and reasons["pixel_sharpness"]["count_b"] == 0
    assert reasons["frame_consistency"]["count_b"] == 7 and reasons["frame_consistency"]["share_b"] == 1.0
    assert reasons["amount_of_motion"]["count_a"] == 0 and reasons["amount_of_motion"]["share_a"] == 0.0
    # Left/right: rater k saw A on the left when k is even.
    assert 0 <= q["left_chosen_share"] <= 1

    f = res["axes"]["faithfulness"]
    # A votes 0, 4, 5, 2 -> majorities B, A, A, B; agreement complete 2, partial 1, split 1.
    assert (f["wins_a"], f["pairs"]) == (2, 4) and f["win_rate_a"] == 0.5
    assert f["agreement"] == {"complete": 2, "partial": 1, "split": 1}
    # P_i = 1, .6, 1, .4 -> P_bar = .75; p_A = 11/20 -> P_e = .505; kappa = .245 / .495.
    assert f["fleiss_kappa"] == pytest.approx(0.245 / 0.495)
    fr = {r["reason"]: r for r in f["reasons"]}
    assert (fr["spatial_alignment"]["count_a"], fr["spatial_alignment"]["count_b"]) == (11, 9)
    assert fr["temporal_alignment"]["share_b"] == 1.0 and fr["temporal_alignment"]["share_a"] == 0.0

    rows = {r["prompt_id"]: r for r in res["per_pair"]}
    assert rows["p002"]["quality_majority"] == "a" and rows["p002"]["quality_agreement"] == "split"
    assert rows["p003"]["quality_majority"] == "b" and rows["p003"]["faithfulness_agreement"] == "split"
    assert rows["p004"]["complete"] is False and rows["p004"]["quality_majority"] is None


def test_exports_and_plot(make_study, tmp_path):
    study, _ = make_study(pairs=5)
    seed_votes(study)
    res = compute_results(study)
    written = export_results(study, res, tmp_path / "out")
    assert sorted(p.name for p in written) == ["pairs.csv", "reasons.csv", "results.json", "results.png", "votes.csv"]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["axes"]["quality"]["wins_a"] == 3 and data["systems"] == {"a": "Ours", "b": "Theirs"}
    with open(tmp_path / "out" / "pairs.csv", newline="") as fh:
        pairs = list(csv.DictReader(fh))
    assert len(pairs) == 5 and pairs[0]["quality_majority_system"] == "Ours"
    assert pairs[4]["complete"] == "0" and pairs[4]["quality_majority"] == ""
    with open(tmp_path / "out" / "votes.csv", newline="") as fh:
        votes = list(csv.DictReader(fh))
    assert len(votes) == 22 and votes[0]["quality_reasons"] == "pixel_sharpness"
    assert votes[0]["submitted_at"].startswith("2023-11-14T")
    with open(tmp_path / "out" / "reasons.csv", newline="") as fh:
        reasons = list(csv.DictReader(fh))
    assert len(reasons) == 2 * (5 + 2)
    row = next(r for r in reasons if r["reason"] == "frame_consistency" and r["system"] == "b")
    assert row["count"] == "7" and float(row["share_of_votes"]) == 1.0
    from PIL import Image

    with Image.open(tmp_path / "out" / "results.png") as im:
        assert im.size[0] > 1000 and im.size[1] > 400


def test_results_command(make_study, capsys, tmp_path):
    study, _ = make_study(pairs=5, name="res")
    seed_votes(study)
    root = study.folder.parent
    assert main(["juice", "results", "res", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "A = Ours, B = Theirs" in out
    assert "75.0 %" in out and "[30.1, 95.4]" in out and "0.231" in out
    assert "Pixel sharpness" in out and "Temporal text alignment" in out
    assert (study.folder / "results" / "results.png").is_file()
    assert main(["juice", "results", "res", "--root", str(root), "--out", str(tmp_path / "o"), "--no-plot"]) == 0
    assert not (tmp_path / "o" / "results.png").exists() and (tmp_path / "o" / "pairs.csv").is_file()


def test_results_of_empty_study(make_study, capsys):
    study, _ = make_study(pairs=2, name="empty")
    assert main(["juice", "results", "empty", "--root", str(study.folder.parent)]) == 0
    out = capsys.readouterr().out
    assert "no pair has all its votes yet" in out and "n/a" in out
    assert not (study.folder / "results" / "results.png").exists()
