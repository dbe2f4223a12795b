"""Load: the server runs in its own process; 50 raters submit 20 votes each at the same time.

No vote may be lost or counted twice, repeats must be idempotent, and the protocol's limits must hold.
"""

import contextlib
import http.client
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from juice_helpers import tiny_pairs

from emu_video.juice.protocol import FAITHFULNESS, QUALITY

RATERS = 50
VOTES_EACH = 20


@pytest.fixture
def server_process(tmp_path):
    from emu_video.juice.study import make_study_from_files

    root = tmp_path / "root"
    # 1000 votes at 5 per pair need 200 pairs; a few spare ones leave room for the assignment order.
    study = make_study_from_files(root, "load", tiny_pairs(tmp_path, 220), system_a="Ours", system_b="Theirs")
    raters = study.add_raters(RATERS)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emu_video.cli.main",
            "juice",
            "serve",
            "load",
            "--root",
            str(root),
            "--port",
            "0",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert "Serving JUICE study" in line, line + proc.stderr.read()
        base = line.strip().rsplit(" ", 1)[-1]
        yield study, [t for _, t in raters], base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _call(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    data = json.dumps(body).encode() if body is not None else None
    for attempt in range(3):
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        except (ConnectionError, http.client.HTTPException):
            # A dropped keep-alive connection: reconnect and repeat (safe, the API is idempotent).
            conn.close()
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError(f"{method} {path} failed three times")


def test_fifty_concurrent_raters(server_process):
    study, tokens, base, proc = server_process
    host, port = base.split("//", 1)[1].split(":")
    barrier = threading.Barrier(RATERS)
    sent: dict[str, dict] = {}  # task id -> the answer the client sent
    errors: list[str] = []
    lock = threading.Lock()

    def rater(i: int, token: str) -> None:
        rng = random.Random(i)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        barrier.wait()
        try:
            for _ in range(VOTES_EACH):
                status, data = _call(conn, "GET", f"/api/r/{token}/next")
                if status != 200 or not data.get("task"):
                    raise AssertionError(f"next: {status} {data}")
                task = data["task"]["id"]
                body = {
                    "quality": {
                        "choice": rng.choice(["left", "right"]),
                        "reasons": rng.sample(QUALITY.reason_keys, rng.randint(1, 5)),
                    },
                    "faithfulness": {
                        "choice": rng.choice(["left", "right"]),
                        "reasons": rng.sample(FAITHFULNESS.reason_keys, rng.randint(1, 2)),
                    },
                }
                status, data = _call(conn, "POST", f"/api/r/{token}/tasks/{task}", body)
                if status != 200 or data["status"] != "recorded":
                    raise AssertionError(f"submit: {status} {data}")
                if rng.random() < 0.25:  # a double click / a retry after a lost answer
                    status, data = _call(conn, "POST", f"/api/r/{token}/tasks/{task}", body)
                    if status != 200 or data["status"] != "duplicate":
                        raise AssertionError(f"repeat: {status} {data}")
                with lock:
                    sent[task] = body
        except Exception as exc:  # collected and reported by the main thread
            with lock:
                errors.append(f"rater {i}: {exc!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=rater, args=(i, t)) for i, t in enumerate(tokens)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - start
    assert not errors, "\n".join(errors[:10])
    assert proc.poll() is None, "the server died"
    assert len(sent) == RATERS * VOTES_EACH

    with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
        votes = conn.execute(
            "SELECT t.key, v.quality, v.faithfulness, v.left_system, v.rater_id, v.pair_id, v.id "
            "FROM votes v JOIN tasks t ON t.id = v.task_id"
        ).fetchall()
        reasons = {}
        for vote_id, axis, reason in conn.execute("SELECT vote_id, axis, reason FROM vote_reasons"):
            reasons.setdefault(vote_id, {}).setdefault(axis, set()).add(reason)
        per_rater = Counter(r for (r,) in conn.execute("SELECT rater_id FROM votes"))
        per_pair = Counter(p for (p,) in conn.execute("SELECT pair_id FROM votes"))
        assert conn.execute("SELECT COUNT(*) FROM tasks WHERE status != 'done'").fetchone()[0] == 0
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # Exactly the votes the clients sent: none lost, none twice, each as sent.
    assert len(votes) == RATERS * VOTES_EACH
    assert {key for key, *_ in votes} == set(sent)
    for key, quality, faithfulness, left, _, _, vote_id in votes:
        body = sent[key]
        for axis, stored in (("quality", quality), ("faithfulness", faithfulness)):
            side = "left" if stored == left else "right"
            assert side == body[axis]["choice"]
            assert reasons[vote_id][axis] == set(body[axis]["reasons"])
    assert set(per_rater.values()) == {VOTES_EACH} and len(per_rater) == RATERS
    assert max(per_pair.values()) <= 5
    assert len({(r, p) for *_, r, p, _ in votes}) == len(votes)
    print(f"{RATERS * VOTES_EACH} votes from {RATERS} concurrent raters in {elapsed:.1f} s")
