"""JUICE under load, on localhost: N raters at once, each taking and answering tasks on a kept-alive connection.

    python benchmarks/juice_load.py [--raters 50] [--votes 20] [--time-limit 120]

A temporary study (tiny videos, enough pairs for every vote) is served by `emu-video juice serve` in its
own process; the raters are client threads of this process that start together. It prints votes/s, the
latency of a vote (the POST that records it) and of every request (p50, p90, p99, max), and checks the
database afterwards: votes lost (sent and acknowledged but not stored) and doubled (stored twice) must both
be 0. 25 % of votes are sent twice, as a double click would, and must come back as duplicates.

Bounded: everything stops after --time-limit seconds (the server is always stopped, the study deleted).
Exit status 1 when a vote is lost or doubled or a request fails. The clients share the machine's cores with
the server, so the figures are a lower bound for a server on its own machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "juice"))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _figures(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {_percentile(ms, 50):.1f} ms, p90 {_percentile(ms, 90):.1f} ms, p99 {_percentile(ms, 99):.1f} ms, "
        f"max {max(ms) if ms else float('nan'):.1f} ms ({len(ms)} requests)"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raters", type=int, default=50, help="concurrent raters (default 50)")
    ap.add_argument("--votes", type=int, default=20, help="votes per rater (default 20)")
    ap.add_argument("--repeat-share", type=float, default=0.25, help="share of votes sent twice (default 0.25)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="stop after this many seconds (default 120)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = ap.parse_args(argv)
    if not (1 <= args.raters <= 500 and 1 <= args.votes <= 1000):
        ap.error("--raters must be 1-500 and --votes 1-1000")

    from juice_helpers import tiny_pairs

    from emu_video.juice.protocol import FAITHFULNESS, QUALITY
    from emu_video.juice.study import make_study_from_files

    tmp = Path(tempfile.mkdtemp(prefix="juice-load-"))
    proc = None
    try:
        pairs = -(-args.raters * args.votes // 5) + 20  # 5 raters a pair, and some spare pairs
        study = make_study_from_files(tmp / "root", "load", tiny_pairs(tmp, pairs))
        tokens = [t for _, t in study.add_raters(args.raters)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        proc = subprocess.Popen(
            [sys.executable, "-m", "emu_video.cli.main", "juice", "serve", "load", "--root", str(tmp / "root"),
             "--port", "0", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        line = proc.stdout.readline()
        if "Serving JUICE study" not in line:
            print(f"the server did not start: {line}{proc.stderr.read()}", file=sys.stderr)
            return 1
        host, port = line.strip().rsplit("//", 1)[1].split(":")
        deadline = time.monotonic() + args.time_limit
        barrier = threading.Barrier(args.raters)
        lock = threading.Lock()
        acknowledged: dict[str, dict] = {}  # task id -> answer the server said it recorded
        vote_times: list[float] = []
        all_times: list[float] = []
        errors: list[str] = []

        def call(conn, method, path, body=None):
            headers = {"Content-Type": "application/json"} if body is not None else {}
            data = json.dumps(body).encode() if body is not None else None
            start = time.perf_counter()
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = json.loads(resp.read() or b"null")
            took = time.perf_counter() - start
            with lock:
                all_times.append(took)
            return resp.status, payload, took

        def rater(i: int, token: str) -> None:
            rng = random.Random(i)
            conn = http.client.HTTPConnection(host, int(port), timeout=max(1.0, args.time_limit))
            try:
                barrier.wait(timeout=60)
                for _ in range(args.votes):
                    if time.monotonic() > deadline:
                        raise TimeoutError("time limit reached")
                    status, data, _ = call(conn, "GET", f"/api/r/{token}/next")
                    if status != 200 or not data.get("task"):
                        raise RuntimeError(f"next: {status} {data}")
                    task = data["task"]["id"]
                    body = {
                        "quality": {"choice": rng.choice(["left", "right"]),
                                    "reasons": rng.sample(QUALITY.reason_keys, rng.randint(1, 5))},
                        "faithfulness": {"choice": rng.choice(["left", "right"]),
                                         "reasons": rng.sample(FAITHFULNESS.reason_keys, rng.randint(1, 2))},
                    }
                    status, data, took = call(conn, "POST", f"/api/r/{token}/tasks/{task}", body)
                    if status != 200 or data.get("status") != "recorded":
                        raise RuntimeError(f"submit: {status} {data}")
                    with lock:
                        acknowledged[task] = body
                        vote_times.append(took)
                    if rng.random() < args.repeat_share:
                        status, data, _ = call(conn, "POST", f"/api/r/{token}/tasks/{task}", body)
                        if status != 200 or data.get("status") != "duplicate":
                            raise RuntimeError(f"repeat: {status} {data}")
            except Exception as exc:  # noqa: BLE001 - any failure of a rater is reported by the main thread
                with lock:
                    errors.append(f"rater {i}: {exc!r}")
            finally:
                conn.close()

        threads = [threading.Thread(target=rater, args=(i, t), daemon=True) for i, t in enumerate(tokens)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic() + 5))
        elapsed = time.monotonic() - start

        with contextlib.closing(sqlite3.connect(study.db_path, timeout=60)) as conn:
            stored = [r[0] for r in conn.execute("SELECT t.key FROM votes v JOIN tasks t ON t.id = v.task_id")]
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        stored_set = set(stored)
        lost = len(set(acknowledged) - stored_set)
        doubled = len(stored) - len(stored_set)
        votes = len(acknowledged)
        figures = {
            "raters": args.raters, "votes": votes, "seconds": round(elapsed, 3),
            "votes_per_second": round(votes / elapsed, 1) if elapsed else None,
            "vote_p50_ms": round(_percentile(vote_times, 50) * 1000, 1),
            "vote_p99_ms": round(_percentile(vote_times, 99) * 1000, 1),
            "request_p50_ms": round(_percentile(all_times, 50) * 1000, 1),
            "request_p99_ms": round(_percentile(all_times, 99) * 1000, 1),
            "lost": lost, "doubled": doubled, "errors": len(errors), "integrity": integrity,
        }
        print(f"{votes} votes from {args.raters} concurrent raters in {elapsed:.2f} s: "
              f"{figures['votes_per_second']} votes/s")
        print(f"vote (POST):  {_figures(vote_times)}")
        print(f"all requests: {_figures(all_times)}")
        print(f"lost {lost}, doubled {doubled}, failed raters {len(errors)}, integrity {integrity}")
        for e in errors[:5]:
            print(f"  {e}", file=sys.stderr)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
        return 0 if not (lost or doubled or errors) and integrity == "ok" else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
