"""The web app over real HTTP: the happy path, video Range requests, and bad or hostile input.

Every hostile request must get a clear 4xx (with a JSON error on the API) and change nothing in the database.
"""

import contextlib
import json
import sqlite3
import urllib.parse

import pytest
from juice_helpers import Client, answer, db_counts, left_system, side_for

SQL = "'; DROP TABLE votes; --"
SQL2 = "1' OR '1'='1"


@pytest.fixture
def app(make_study, serve):
    study, raters = make_study(pairs=4, raters=3)
    base = serve(study)
    client = Client(base)
    tokens = [t for _, t in raters]
    # Rater 0 has answered one task and holds a second; rater 1 holds one; rater 2 has nothing yet.
    s, first = client.json("GET", f"/api/r/{tokens[0]}/next")
    assert s == 200
    s, body = client.json("POST", f"/api/r/{tokens[0]}/tasks/{first['task']['id']}", answer())
    assert s == 200 and body["status"] == "recorded"
    s, held = client.json("GET", f"/api/r/{tokens[0]}/next")
    s, other = client.json("GET", f"/api/r/{tokens[1]}/next")
    return {
        "study": study,
        "client": client,
        "tokens": tokens,
        "done_task": first["task"],
        "task": held["task"],
        "other_task": other["task"],
    }


def test_pages_and_happy_path(app):
    c, study, t2 = app["client"], app["study"], app["tokens"][2]
    status, headers, body = c.request("GET", f"/r/{t2}")
    assert status == 200 and b'src="/static/rater.js"' in body
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    for name in ("rater.js", "admin.js", "juice.css"):
        assert c.request("GET", f"/static/{name}")[0] == 200
    status, data = c.json("GET", f"/api/r/{t2}/next")
    task = data["task"]
    assert status == 200 and task["prompt"].startswith("prompt number")
    # Blind: the task says nothing about which system made which video.
    assert set(task) == {"id", "prompt", "left", "right", "width", "height"} and set(task["left"]) == {"video"}
    assert "Ours" not in json.dumps(data) and "Theirs" not in json.dumps(data)
    assert [q["axis"] for q in data["questions"]] == ["quality", "faithfulness"]
    assert len(data["questions"][0]["reasons"]) == 5 and len(data["questions"][1]["reasons"]) == 2
    left = left_system(study.db_path, task["id"])
    body = answer(
        q_side=side_for("b", left), f_side=side_for("a", left), q_reasons=["motion_smoothness", "pixel_sharpness"]
    )
    status, data = c.json("POST", f"/api/r/{t2}/tasks/{task['id']}", body)
    assert status == 200 and data == {"status": "recorded", "progress": {"done": 1}}
    status, data = c.json("POST", f"/api/r/{t2}/tasks/{task['id']}", body)
    assert status == 200 and data["status"] == "duplicate"
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
        row = conn.execute("SELECT quality, faithfulness FROM votes ORDER BY id DESC LIMIT 1").fetchone()
        reasons = conn.execute("SELECT axis, reason FROM vote_reasons ORDER BY vote_id DESC, axis, reason").fetchall()
    assert row == ("b", "a")
    assert reasons[:3] == [
        ("faithfulness", "spatial_alignment"),
        ("quality", "motion_smoothness"),
        ("quality", "pixel_sharpness"),
    ]
    status, data = c.json("GET", f"/api/admin/{study.admin_token}/progress")
    assert status == 200 and data["votes"] == 2 and data["pairs"] == 4 and data["votes_needed"] == 20
    assert c.request("GET", f"/admin/{study.admin_token}")[0] == 200
    assert c.json("GET", "/healthz")[0] == 200


def test_video_range_requests(app):
    c, t0 = app["client"], app["tokens"][0]
    key = app["task"]["left"]["video"]
    url = f"/api/r/{t0}/video/{key}"
    status, headers, full = c.request("GET", url)
    size = len(full)
    assert status == 200 and headers["Content-Type"] == "video/mp4" and headers["Accept-Ranges"] == "bytes"
    assert full[4:8] == b"ftyp"
    status, headers, part = c.request("GET", url, headers={"Range": "bytes=0-99"})
    assert status == 206 and part == full[:100] and headers["Content-Range"] == f"bytes 0-99/{size}"
    status, headers, part = c.request("GET", url, headers={"Range": "bytes=-10"})
    assert status == 206 and part == full[-10:]
    status, headers, part = c.request("GET", url, headers={"Range": f"bytes=100-{size + 500}"})
    assert status == 206 and part == full[100:]
    status, headers, _ = c.request("GET", url, headers={"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    status, _, body = c.request("GET", url, headers={"Range": "lines=1-2"})  # not a byte range: ignored
    assert status == 200 and body == full
    status, headers, body = c.request("HEAD", url)
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == size
    # Numbers a Python int() refuses (too many digits) or that only Unicode calls digits: never a 500.
    status, headers, part = c.request("GET", url, headers={"Range": "bytes=0-" + "9" * 5000})
    assert status == 206 and part == full
    status, headers, part = c.request("GET", url, headers={"Range": "bytes=-" + "9" * 5000})
    assert status == 206 and part == full
    status, headers, _ = c.request("GET", url, headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    for odd in ("bytes=\u00b2-", "bytes=0-\u00b9", "bytes=-\u00b3", "bytes=0_1-5"):
        status, _, body = c.request("GET", url, headers={"Range": odd})
        assert status == 200 and body == full, odd
    # A video of a finished task can still be fetched (e.g. a player re-buffering).
    assert c.request("GET", f"/api/r/{t0}/video/{app['done_task']['right']['video']}")[0] == 200


def _hostile_requests(app):
    study, (t0, t1, t2) = app["study"], app["tokens"]
    task, other, done = app["task"]["id"], app["other_task"]["id"], app["done_task"]["id"]
    good = json.dumps(answer()).encode()
    q = urllib.parse.quote
    vid_other = app["other_task"]["left"]["video"]
    held_vid = app["task"]["left"]["video"]
    # fmt: off
    cases = [
        # (name, method, path, body, headers, expected status)
        ("root without token", "GET", "/", None, {}, 401),
        ("rater page without token", "GET", "/r/", None, {}, 401),
        ("admin page without token", "GET", "/admin", None, {}, 401),
        ("api without token", "GET", "/api/r//next", None, {}, 401),
        ("unknown rater token", "GET", "/api/r/AAAAAAAAAAAAAAAAAAAAAAAA/next", None, {}, 403),
        ("unknown rater page", "GET", "/r/AAAAAAAAAAAAAAAAAAAAAAAA", None, {}, 403),
        ("sql in rater token", "GET", f"/api/r/{q(SQL)}/next", None, {}, 403),
        ("sql in rater token 2", "GET", f"/api/r/{q(SQL2)}/next", None, {}, 403),
        ("sql in rater page token", "GET", f"/r/{q(SQL2)}", None, {}, 403),
        ("admin token as rater", "GET", f"/api/r/{study.admin_token}/next", None, {}, 403),
        ("rater token as admin", "GET", f"/api/admin/{t0}/progress", None, {}, 403),
        ("sql in admin token", "GET", f"/api/admin/{q(SQL)}/progress", None, {}, 403),
        ("admin page unknown", "GET", "/admin/AAAAAAAAAAAAAAAAAAAAAAAA", None, {}, 403),
        ("submit unknown token", "POST", f"/api/r/AAAAAAAAAAAAAAAAAAAAAAAA/tasks/{task}", good, {}, 403),
        ("submit without token", "POST", f"/api/r//tasks/{task}", good, {}, 401),
        ("forged task id", "POST", f"/api/r/{t0}/tasks/AAAAAAAAAAAAAAAA", good, {}, 404),
        ("sql task id", "POST", f"/api/r/{t0}/tasks/{q(SQL)}", good, {}, 404),
        ("another rater's task", "POST", f"/api/r/{t2}/tasks/{other}", good, {}, 404),
        ("another rater's held task", "POST", f"/api/r/{t1}/tasks/{task}", good, {}, 404),
        ("changed answer to a done task", "POST", f"/api/r/{t0}/tasks/{done}",
         json.dumps(answer(q_side="right", f_side="right")).encode(), {}, 409),
        ("no reasons", "POST", f"/api/r/{t0}/tasks/{task}", json.dumps(answer(q_reasons=[])).encode(), {}, 400),
        ("no faithfulness reasons", "POST", f"/api/r/{t0}/tasks/{task}",
         json.dumps(answer(f_reasons=[])).encode(), {}, 400),
        ("sql in reason", "POST", f"/api/r/{t0}/tasks/{task}",
         json.dumps(answer(q_reasons=[SQL])).encode(), {}, 400),
        ("sql in choice", "POST", f"/api/r/{t0}/tasks/{task}",
         json.dumps(answer(q_side=SQL2)).encode(), {}, 400),
        ("sql as field name", "POST", f"/api/r/{t0}/tasks/{task}",
         json.dumps({**answer(), SQL: 1}).encode(), {}, 400),
        ("sql in nested field", "POST", f"/api/r/{t0}/tasks/{task}",
         json.dumps({"quality": {"choice": "left", "reasons": ["pixel_sharpness"], SQL: 1},
                     "faithfulness": answer()["faithfulness"]}).encode(), {}, 400),
        ("reason not a string", "POST", f"/api/r/{t0}/tasks/{task}",
         json.dumps(answer(q_reasons=[1])).encode(), {}, 400),
        ("reason twice", "POST", f"/api/r/{t0}/tasks/{task}",
         json.dumps(answer(q_reasons=["pixel_sharpness", "pixel_sharpness"])).encode(), {}, 400),
        ("missing question", "POST", f"/api/r/{t0}/tasks/{task}",
         json.dumps({"quality": answer()["quality"]}).encode(), {}, 400),
        ("malformed json", "POST", f"/api/r/{t0}/tasks/{task}", b'{"quality": {', {}, 400),
        ("json array", "POST", f"/api/r/{t0}/tasks/{task}", b"[1, 2, 3]", {}, 400),
        ("json string", "POST", f"/api/r/{t0}/tasks/{task}", b'"left"', {}, 400),
        ("NaN constant", "POST", f"/api/r/{t0}/tasks/{task}", b'{"quality": NaN}', {}, 400),
        ("deep nesting", "POST", f"/api/r/{t0}/tasks/{task}", b"[" * 30000 + b"]" * 30000, {}, 400),
        ("not utf-8", "POST", f"/api/r/{t0}/tasks/{task}", b"\xff\xfe{}", {}, 400),
        ("empty body", "POST", f"/api/r/{t0}/tasks/{task}", b"", {}, 400),
        ("oversized body", "POST", f"/api/r/{t0}/tasks/{task}", b"x" * (64 * 1024 + 1), {}, 413),
        ("oversized declared length", "POST", f"/api/r/{t0}/tasks/{task}", b"{}",
         {"Content-Length": str(10**9)}, 413),
        ("bad content length", "POST", f"/api/r/{t0}/tasks/{task}", b"{}", {"Content-Length": "-5"}, 400),
        # Unicode digits pass str.isdigit() but not int(); huge numbers pass neither int() limit nor sense.
        ("superscript content length", "POST", f"/api/r/{t0}/tasks/{task}", b"{}", {"Content-Length": "\u00b2"}, 400),
        ("content length with a superscript digit", "POST", f"/api/r/{t0}/tasks/{task}", b"{}",
         {"Content-Length": "1\u00b9"}, 400),
        ("content length of 5000 digits", "POST", f"/api/r/{t0}/tasks/{task}", b"{}",
         {"Content-Length": "9" * 5000}, 413),
        ("content length with a sign", "POST", f"/api/r/{t0}/tasks/{task}", b"{}", {"Content-Length": "+2"}, 400),
        ("content length with underscores", "POST", f"/api/r/{t0}/tasks/{task}", b"{}",
         {"Content-Length": "0_2"}, 400),
        ("two content lengths", "POST", f"/api/r/{t0}/tasks/{task}", good,
         {"Content-Length": [str(len(good)), "5"]}, 400),
        ("chunked body", "POST", f"/api/r/{t0}/tasks/{task}", b"2\r\n{}\r\n0\r\n\r\n",
         {"Transfer-Encoding": "chunked"}, 411),
        ("no content length", "POST", f"/api/r/{t0}/tasks/{task}", None, {"Content-Type": "application/json"}, 411),
        ("form instead of json", "POST", f"/api/r/{t0}/tasks/{task}", b"quality=left",
         {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("GET on submit", "GET", f"/api/r/{t0}/tasks/{task}", None, {}, 405),
        ("PUT on submit", "PUT", f"/api/r/{t0}/tasks/{task}", good, {}, 405),
        ("DELETE on next", "DELETE", f"/api/r/{t0}/next", None, {}, 405),
        ("POST on next", "POST", f"/api/r/{t0}/next", good, {}, 405),
        ("video dot-dot", "GET", f"/api/r/{t0}/video/../../study.sqlite", None, {}, 404),
        ("video encoded dot-dot", "GET", f"/api/r/{t0}/video/..%2F..%2Fstudy.sqlite", None, {}, 404),
        ("video double encoded", "GET", f"/api/r/{t0}/video/%252e%252e%252fstudy.sqlite", None, {}, 404),
        ("video absolute path", "GET", f"/api/r/{t0}/video//etc/passwd", None, {}, 404),
        ("video file name", "GET", f"/api/r/{t0}/video/{held_vid}.mp4", None, {}, 404),
        ("video backslash", "GET", f"/api/r/{t0}/video/..\\..\\study.sqlite", None, {}, 404),
        ("video sql", "GET", f"/api/r/{t0}/video/{q(SQL)}", None, {}, 404),
        ("video of another rater's pair", "GET", f"/api/r/{t2}/video/{vid_other}", None, {}, 404),
        ("video with unknown token", "GET", f"/api/r/AAAAAAAAAAAAAAAAAAAAAAAA/video/{held_vid}", None, {}, 403),
        ("videos folder", "GET", "/videos/", None, {}, 404),
        ("database file", "GET", "/study.sqlite", None, {}, 404),
        ("static dot-dot", "GET", "/static/../store.py", None, {}, 404),
        ("static encoded dot-dot", "GET", "/static/..%2Fstore.py", None, {}, 404),
        ("static unknown", "GET", "/static/server.py", None, {}, 404),
        ("static html", "GET", "/static/rater.html", None, {}, 404),
        ("POST on a page", "POST", f"/r/{t0}", good, {}, 405),
        ("unknown api", "GET", f"/api/r/{t0}/votes", None, {}, 404),
    ]
    # fmt: on
    return cases


def test_hostile_requests_are_refused_and_change_nothing(app):
    c, study = app["client"], app["study"]
    before = db_counts(study.db_path)
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
        snapshot = conn.execute("SELECT * FROM tasks ORDER BY id").fetchall()
    failures = []
    for name, method, path, body, headers, expected in _hostile_requests(app):
        headers = dict(headers)
        if body is not None and method == "POST":
            headers.setdefault("Content-Type", "application/json")
        status, resp_headers, data = c.request(method, path, body=body, headers=headers)
        if status != expected:
            failures.append(f"{name}: {status} != {expected} ({data[:200]!r})")
            continue
        if path.startswith("/api/"):
            try:
                err = json.loads(data)
            except ValueError:
                failures.append(f"{name}: no JSON error body ({data[:100]!r})")
                continue
            if not (isinstance(err, dict) and err.get("error") and err.get("status") == status):
                failures.append(f"{name}: unclear error body {err!r}")
        elif status >= 400 and method != "HEAD" and b"<html" not in data:
            failures.append(f"{name}: no error page")
        if status == 405 and "Allow" not in resp_headers:
            failures.append(f"{name}: 405 without Allow")
    assert not failures, "\n".join(failures)
    assert db_counts(study.db_path) == before
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
        assert conn.execute("SELECT * FROM tasks ORDER BY id").fetchall() == snapshot
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # The server is still healthy and the held task can still be answered normally.
    t0, task = app["tokens"][0], app["task"]["id"]
    status, data = c.json("POST", f"/api/r/{t0}/tasks/{task}", answer())
    assert status == 200 and data["status"] == "recorded"


def test_keep_alive_survives_refused_bodies(app):
    """A refused oversized body must not be read as the next request on the same connection."""
    import http.client

    c, t0, task = app["client"], app["tokens"][0], app["task"]["id"]
    conn = http.client.HTTPConnection(c.host, c.port, timeout=10)
    try:
        smuggled = b"GET /api/r/" + t0.encode() + b"/next HTTP/1.1\r\nHost: x\r\n\r\n"
        conn.request(
            "POST",
            f"/api/r/{t0}/tasks/{task}",
            body=smuggled,
            headers={"Content-Type": "text/plain", "Content-Length": str(len(smuggled))},
        )
        resp = conn.getresponse()
        assert resp.status == 415
        resp.read()
        assert resp.getheader("Connection") == "close"
    finally:
        conn.close()


def test_html_is_escaped_in_error_pages(app):
    c = app["client"]
    status, _, body = c.request("GET", "/r/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert status == 403 and b"<script>alert" not in body


def test_kept_alive_responses_are_not_delayed(app, monkeypatch):
    """Headers and a small body go out in one write on a TCP_NODELAY socket: on a kept-alive connection, a
    body sent as a second small write waited for the client's delayed ACK (about 40 ms on every response)."""
    import http.client
    import socket
    import statistics
    import threading
    import time

    writes = []
    real_sendall = socket.socket.sendall

    def sendall(sock, data, *args):
        if threading.current_thread() is not threading.main_thread():
            nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            writes.append((bytes(data[:12]), len(data), bool(nodelay)))
        return real_sendall(sock, data, *args)

    monkeypatch.setattr(socket.socket, "sendall", sendall)
    c, t0 = app["client"], app["tokens"][0]
    conn = http.client.HTTPConnection(c.host, c.port, timeout=10)
    times = []
    try:
        for path in ["/healthz"] * 15 + [f"/api/r/{t0}/next"] * 5:
            start = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            times.append(time.perf_counter() - start)
            assert resp.status == 200 and body and not resp.will_close
    finally:
        conn.close()
    assert len(writes) == 20, writes[:4]  # one write per response: status line, headers and body together
    assert all(head.startswith(b"HTTP/1.1 200") and nodelay for head, _, nodelay in writes)
    assert statistics.median(times) < 0.03, f"median {statistics.median(times) * 1000:.1f} ms on a kept-alive connection"


def test_errors_from_the_http_layer_carry_the_security_headers(app):
    """501 (unknown method), 505 and 400 (bad request line) are written by the standard library's
    send_error: they must carry the same headers as every other response, and give an API a JSON error."""
    import socket

    c, t0 = app["client"], app["tokens"][0]
    status, headers, body = c.request("BREW", "/healthz")
    assert status == 501
    status, headers, body = c.request("BREW", f"/api/r/{t0}/next")
    err = json.loads(body)
    assert status == 501 and err["status"] == 501 and "BREW" in err["error"]
    checks = [headers]
    for raw in (b"GET /healthz HTTP/2.0\r\n\r\n", b"GET /healthz HTTP/1.\xb2\r\n\r\n", b"GET\r\n\r\n"):
        with socket.create_connection((c.host, c.port), timeout=10) as s:
            s.sendall(raw)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].split()[1] in ("400", "505"), lines[0]
        checks.append(dict(line.split(": ", 1) for line in lines[1:]))
        assert b"<html" in body
    for h in checks:
        assert h["Content-Security-Policy"].startswith("default-src 'none'")
        assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer" and h["Cache-Control"] == "no-store"
        assert h["Connection"] == "close"
