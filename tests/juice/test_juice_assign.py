"""Task assignment and vote recording in the study database (no HTTP)."""

import contextlib
import sqlite3
from collections import Counter

import pytest
from juice_helpers import answer, db_counts

from emu_video.juice.store import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
)


def _drain(study, tokens):
    """Every rater takes and answers tasks until none is left; returns {token: [pair ids]}."""
    seen = {t: [] for t in tokens}
    active = list(tokens)
    i = 0
    while active:
        token = active[i % len(active)]
        got = study.next_task(token)
        if got["task"] is None:
            active.remove(token)
            continue
        with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
            pair = conn.execute("SELECT pair_id FROM tasks WHERE key = ?", (got["task"]["id"],)).fetchone()[0]
        seen[token].append(pair)
        assert study.submit(token, got["task"]["id"], answer())["status"] == "recorded"
        i += 1
    return seen


def test_each_pair_gets_exactly_five_distinct_raters(make_study):
    study, raters = make_study(pairs=6, raters=8)
    seen = _drain(study, [t for _, t in raters])
    per_pair = Counter(p for pairs in seen.values() for p in pairs)
    assert set(per_pair.values()) == {5} and len(per_pair) == 6
    for pairs in seen.values():
        assert len(pairs) == len(set(pairs))  # never the same pair twice
    counts = db_counts(study.db_path)
    assert counts["votes"] == 30 and counts["open"] == 0
    # Left/right order balanced within each pair: 3|2, never 5|0.
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
        rows = conn.execute("SELECT pair_id, SUM(left_system = 'a') FROM tasks GROUP BY pair_id").fetchall()
    assert all(n_left_a in (2, 3) for _, n_left_a in rows)


def test_too_few_raters_leave_pairs_short(make_study):
    study, raters = make_study(pairs=3, raters=3)
    seen = _drain(study, [t for _, t in raters])
    assert all(len(p) == 3 for p in seen.values())
    assert study.progress()["pairs_complete"] == 0


def test_stop_and_come_back_gets_the_same_task(make_study):
    study, [(_, tok)] = make_study(pairs=3, raters=1)
    first = study.next_task(tok)["task"]
    again = study.next_task(tok)["task"]
    assert first == again
    study.submit(tok, first["id"], answer())
    nxt = study.next_task(tok)["task"]
    assert nxt["id"] != first["id"] and nxt["prompt"] != first["prompt"]
    assert study.next_task(tok)["progress"]["done"] == 1


def test_repeat_is_idempotent_and_change_is_refused(make_study):
    study, [(_, tok)] = make_study(pairs=2, raters=1)
    task = study.next_task(tok)["task"]
    assert study.submit(tok, task["id"], answer())["status"] == "recorded"
    before = db_counts(study.db_path)
    assert study.submit(tok, task["id"], answer())["status"] == "duplicate"
    # Same reasons in another order: still the same answer.
    body = answer(q_reasons=("pixel_sharpness",))
    assert study.submit(tok, task["id"], body)["status"] == "duplicate"
    with pytest.raises(Conflict):
        study.submit(tok, task["id"], answer(q_side="right"))
    with pytest.raises(Conflict):
        study.submit(tok, task["id"], answer(q_reasons=("pixel_sharpness", "amount_of_motion")))
    assert db_counts(study.db_path) == before


def test_refusals(make_study):
    study, [(_, t1), (_, t2)] = make_study(pairs=2, raters=2)
    task = study.next_task(t1)["task"]
    before = db_counts(study.db_path)
    with pytest.raises(Unauthorized):
        study.next_task("")
    with pytest.raises(Forbidden):
        study.next_task("x" * 24)
    with pytest.raises(Forbidden):
        study.next_task("' OR '1'='1")
    with pytest.raises(NotFound):
        study.submit(t2, task["id"], answer())  # another rater's task
    with pytest.raises(NotFound):
        study.submit(t1, "forgedtaskid0000", answer())
    with pytest.raises(BadRequest, match="at least one reason"):
        study.submit(t1, task["id"], answer(q_reasons=()))
    with pytest.raises(BadRequest, match="unknown reason"):
        study.submit(t1, task["id"], answer(f_reasons=("pixel_sharpness",)))  # a quality reason on faithfulness
    with pytest.raises(BadRequest):
        study.submit(t1, task["id"], {"quality": {"choice": "left", "reasons": ["pixel_sharpness"]}})
    assert db_counts(study.db_path) == before


def test_lease_expiry_moves_the_slot_and_refuses_the_late_vote(make_study):
    study, raters = make_study(pairs=1, raters=6)
    toks = [t for _, t in raters]
    t0 = 1_000_000.0
    tasks = [study.next_task(t, lease_seconds=60, now=t0)["task"] for t in toks[:5]]
    assert all(tasks)
    # The pair is fully taken: the sixth rater has nothing to do...
    assert study.next_task(toks[5], lease_seconds=60, now=t0 + 30)["task"] is None
    for t, task in zip(toks[1:5], tasks[1:5]):
        study.submit(t, task["id"], answer(), now=t0 + 40)
    # ...until the first rater's task goes stale: then the slot is theirs.
    late = study.next_task(toks[5], lease_seconds=60, now=t0 + 120)["task"]
    assert late is not None
    with pytest.raises(Conflict, match="expired"):
        study.submit(toks[0], tasks[0]["id"], answer(), now=t0 + 121)
    study.submit(toks[5], late["id"], answer(), now=t0 + 122)
    assert study.progress()["pairs_complete"] == 1
    assert db_counts(study.db_path)["votes"] == 5


def test_revoked_rater(make_study):
    study, [(label, tok)] = make_study(pairs=2, raters=1)
    study.next_task(tok)
    study.set_rater_active(label, False)
    with pytest.raises(Forbidden, match="revoked"):
        study.next_task(tok)
    assert db_counts(study.db_path)["open"] == 0
    study.set_rater_active(tok, True)
    assert study.next_task(tok)["task"] is not None


def test_database_caps_votes_per_pair(make_study):
    study, raters = make_study(pairs=1, raters=5, raters_per_pair=3)
    toks = [t for _, t in raters]
    for t in toks[:3]:
        study.submit(t, study.next_task(t)["task"]["id"], answer())
    assert study.next_task(toks[3])["task"] is None
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        with pytest.raises(sqlite3.IntegrityError, match="all its votes"):
            conn.execute(
                "INSERT INTO votes (task_id, rater_id, pair_id, left_system, quality, faithfulness, submitted_at, "
                "seconds) VALUES (999, 4, 1, 'a', 'a', 'a', 0, 0)"
            )


def test_concurrent_writers_of_one_process_queue_in_order_and_reuse_connections(make_study, monkeypatch):
    """Threads of one server never contend inside SQLite (whose busy handler sleeps up to 100 ms a try,
    which made the p99 of a vote seconds long under load): with SQLite's busy timeout at 0, any such
    contention would fail at once. And requests reuse pooled connections instead of opening one each."""
    import threading

    from emu_video.juice import store as store_module

    opened = []
    real_connect = store_module.connect

    def impatient_connect(path):
        conn = real_connect(path)
        conn.execute("PRAGMA busy_timeout = 0")
        opened.append(conn)
        return conn

    study, raters = make_study(pairs=40, raters=8)
    monkeypatch.setattr(store_module, "connect", impatient_connect)
    barrier = threading.Barrier(len(raters))
    errors = []

    def rater(token):
        try:
            barrier.wait(10)
            for _ in range(5):
                task = study.next_task(token)["task"]
                assert study.submit(token, task["id"], answer())["status"] == "recorded"
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=rater, args=(t,)) for _, t in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert db_counts(study.db_path)["votes"] == 40
    assert len(opened) <= len(raters)  # 80 transactions, at most one connection per concurrent thread
