"""Helpers for the JUICE tests: synthetic videos, a study, a server thread, a raw HTTP client."""

from __future__ import annotations

import contextlib
import http.client
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

from emu_video.io.video import write_video


def make_video(path, width, height, frames, fps, border=0):
    """A video whose frame i is a flat grey of level 10 + 8 * i (so a decoded frame tells its index), with
    optional red (left) and blue (right) bands `border` pixels wide that a centre crop must remove."""
    data = np.zeros((frames, height, width, 3), np.uint8)
    for i in range(frames):
        data[i] = min(255, 10 + 8 * i)
        if border:
            data[i, :, :border] = (255, 0, 0)
            data[i, :, width - border :] = (0, 0, 255)
    return write_video(path, data, fps)


def frame_index(frame: np.ndarray) -> float:
    return (float(frame[..., 1].mean()) - 10.0) / 8.0


def moving_square_video(path, width, height, frames, fps, colour):
    data = np.zeros((frames, height, width, 3), np.uint8)
    data[:] = colour
    s = max(4, min(width, height) // 4)
    for t in range(frames):
        x = int(t * (width - s) / max(1, frames - 1))
        data[t, height // 2 - s // 2 : height // 2 + s // 2, x : x + s] = 255
    return write_video(path, data, fps)


def db_counts(db_path) -> dict:
    with contextlib.closing(sqlite3.connect(str(db_path))) as conn:
        return {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("pairs", "videos", "raters", "tasks", "votes", "vote_reasons", "meta")
        } | {"open": conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'open'").fetchone()[0]}


def left_system(db_path, task_key) -> str:
    with contextlib.closing(sqlite3.connect(str(db_path))) as conn:
        return conn.execute("SELECT left_system FROM tasks WHERE key = ?", (task_key,)).fetchone()[0]


def answer(q_side="left", f_side="left", q_reasons=("pixel_sharpness",), f_reasons=("spatial_alignment",)) -> dict:
    return {
        "quality": {"choice": q_side, "reasons": list(q_reasons)},
        "faithfulness": {"choice": f_side, "reasons": list(f_reasons)},
    }


def side_for(system: str, left: str) -> str:
    return "left" if system == left else "right"


class Client:
    """A raw HTTP client: every request on a fresh connection, any method, headers and body."""

    def __init__(self, base_url: str):
        host, port = base_url.split("//", 1)[1].split(":")
        self.host, self.port = host, int(port)

    def request(self, method, path, body=None, headers=None, json_body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            if body is not None and "Content-Length" not in headers and "Transfer-Encoding" not in headers:
                headers["Content-Length"] = str(len(body))
            for k, v in headers.items():
                for one in v if isinstance(v, list) else [v]:
                    conn.putheader(k, one)
            conn.endheaders()
            if body is not None:
                try:
                    conn.send(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        finally:
            conn.close()

    def json(self, method, path, json_body=None, **kw):
        status, headers, data = self.request(method, path, json_body=json_body, **kw)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return status, parsed


class ServerThread:
    """The JUICE server on a free loopback port, in a background thread of the test process."""

    def __init__(self, study, lease_seconds=3600.0):
        from emu_video.juice.server import make_server

        self.server = make_server(study, "127.0.0.1", 0, lease_seconds, quiet=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = self.server.base_url

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def tiny_pairs(tmp: Path, count: int, prefix="p") -> list[tuple[str, str, Path, Path]]:
    """`count` pairs sharing two small processed-looking mp4 files (for tests that are not about video)."""
    a, b = tmp / "src_a.mp4", tmp / "src_b.mp4"
    if not a.exists():
        moving_square_video(a, 64, 64, 8, 8, (200, 40, 40))
        moving_square_video(b, 64, 64, 8, 8, (40, 40, 200))
    return [(f"{prefix}{i:03d}", f"prompt number {i}: a red ball", a, b) for i in range(count)]
