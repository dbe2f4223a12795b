"""The JUICE web app: a standard-library HTTP server in front of a study's SQLite database.

Routes (the token of a rater or of the admin is part of every path; nothing is served without one):

    GET  /r/<rater token>                      the rating page
    GET  /api/r/<rater token>/next             the rater's open task, or a new one (JSON)
    POST /api/r/<rater token>/tasks/<task id>  submit both answers of a task (JSON body, at most 64 KiB)
    GET  /api/r/<rater token>/video/<video id> a video of one of the rater's tasks (supports Range)
    GET  /admin/<admin token>                  the progress page
    GET  /api/admin/<admin token>/progress     progress as JSON
    GET  /static/<file>                        the page's script and style sheet
    GET  /healthz                              liveness

Status codes: 400 malformed request, 401 no token, 403 unknown or revoked token, 404 unknown task or video
(also another rater's), 405 wrong method, 409 answer conflicting with a recorded one, 411 no
Content-Length, 413 body too large, 415 body not JSON, 416 bad Range.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from emu_video.juice.store import DEFAULT_LEASE_SECONDS, RequestError, Study

MAX_BODY_BYTES = 64 * 1024
CHUNK = 64 * 1024
LINGER_BYTES = 4 * 1024 * 1024
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
STATIC_FILES = ("rater.js", "admin.js", "juice.css")
PAGE_FILES = ("rater.html", "admin.html", "message.html")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SEG = r"([^/]*)"
ROUTES: list[tuple[re.Pattern, tuple[str, ...], str]] = [
    (re.compile(r"^/$"), ("GET", "HEAD"), "no_token"),
    (re.compile(r"^/(?:r|admin)/?$"), ("GET", "HEAD"), "no_token"),
    (re.compile(rf"^/r/{SEG}/?$"), ("GET", "HEAD"), "rater_page"),
    (re.compile(rf"^/admin/{SEG}/?$"), ("GET", "HEAD"), "admin_page"),
    (re.compile(rf"^/api/r/{SEG}/next$"), ("GET",), "api_next"),
    (re.compile(rf"^/api/r/{SEG}/tasks/{SEG}$"), ("POST",), "api_submit"),
    (re.compile(rf"^/api/r/{SEG}/video/{SEG}$"), ("GET", "HEAD"), "api_video"),
    (re.compile(rf"^/api/admin/{SEG}/progress$"), ("GET",), "api_progress"),
    (re.compile(r"^/static/([A-Za-z0-9_.-]+)$"), ("GET", "HEAD"), "static"),
    (re.compile(r"^/healthz$"), ("GET", "HEAD"), "health"),
    (re.compile(r"^/favicon\.ico$"), ("GET", "HEAD"), "favicon"),
]
_REDACT = re.compile(r"/(r|admin|tasks|video)/[A-Za-z0-9_-]{4,}")


def _load_assets() -> dict[str, bytes]:
    base = resources.files("emu_video.juice") / "static"
    return {name: (base / name).read_bytes() for name in STATIC_FILES + PAGE_FILES}


class JuiceServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address, study: Study, lease_seconds: float = DEFAULT_LEASE_SECONDS, quiet: bool = False):
        self.study = study
        self.lease_seconds = float(lease_seconds)
        self.quiet = quiet
        self.assets = _load_assets()
        self.log_lock = threading.Lock()
        super().__init__(address, JuiceHandler)

    def server_close(self) -> None:
        super().server_close()
        self.study.close()  # the pooled database connections

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"


class JuiceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "JUICE"
    sys_version = ""
    timeout = 30  # seconds a client may stay silent mid-request
    # Small responses must not wait for the client's delayed ACK (Nagle): on a kept-alive connection that added
    # about 40 ms to every response. Headers and a small body also go out in one write (see _headers).
    disable_nagle_algorithm = True
    COALESCE_BYTES = 64 * 1024
    server: JuiceServer

    # -- plumbing --------------------------------------------------------------------------------------
    def version_string(self) -> str:
        return self.server_version

    def finish(self) -> None:
        super().finish()
        if getattr(self, "_unread_body", False):
            self._linger()

    def _linger(self) -> None:
        """Close politely after refusing a body: stop sending, then drain what the client still sends for a
        moment, so the kernel does not reset the connection before the client has read the error."""
        deadline = time.monotonic() + 2.0
        drained = 0
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while drained < LINGER_BYTES and time.monotonic() < deadline:
                self.connection.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.connection.recv(CHUNK)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.quiet:
            return
        text = _REDACT.sub(lambda m: f"/{m.group(1)}/...", format % args)
        with self.server.log_lock:
            sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {text}\n")

    def _headers(self, status: int, ctype: str, length: int, extra: dict | None = None, body: bytes = b"") -> None:
        """Send the status line and headers, and `body` (if given) in the same write."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if getattr(self, "_unread_body", False):
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        buffered = getattr(self, "_headers_buffer", None)
        if body and buffered is not None:
            buffered.extend((b"\r\n", body))
            self.flush_headers()
        else:
            self.end_headers()
            if body:
                self.wfile.write(body)

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        extra = {"Cache-Control": "no-store", **(extra or {})}
        send = body if self.command != "HEAD" else b""
        if len(send) > self.COALESCE_BYTES:
            self._headers(status, ctype, len(body), extra)
            self.wfile.write(send)
        else:
            self._headers(status, ctype, len(body), extra, body=send)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def _page(self, status: int, name: str) -> None:
        self._send(status, self.server.assets[name], "text/html; charset=utf-8")

    def _message_page(self, status: int, title: str, text: str, extra: dict | None = None) -> None:
        import html

        body = (
            self.server.assets["message.html"]
            .decode()
            .replace("{{title}}", html.escape(title))
            .replace("{{text}}", html.escape(text[:1].upper() + text[1:]))
        )
        self._send(status, body.encode(), "text/html; charset=utf-8", extra)

    def _error(self, status: int, message: str, api: bool, extra: dict | None = None) -> None:
        if api:
            body = json.dumps({"error": message, "status": status}).encode()
            self._send(status, body, "application/json; charset=utf-8", extra)
        else:
            self._message_page(status, HTTPStatus(status).phrase, message, extra)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the standard library raises itself (501 unknown method, 400 bad request line, 414, 431, 505)
        go out like every other response: security headers, a JSON body on the API, an HTML page elsewhere."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # the request line was unreadable: answer in HTTP/1.1
            self.request_version = self.protocol_version
        text = message or HTTPStatus(code).phrase
        self.log_error("code %d, message %s", code, text)
        # `path` is only this request's once `command` is set (a bad request line leaves the previous one).
        api = bool(self.command) and getattr(self, "path", "").startswith("/api/")
        try:
            self._error(code, text, api)
        except OSError:
            pass

    # -- dispatch --------------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_OPTIONS(self):
        self._dispatch()

    def _dispatch(self) -> None:
        raw = self.path
        path = raw.split("?", 1)[0].split("#", 1)[0]
        api = path.startswith("/api/")
        # A body left unread would be parsed as the next request: such a connection is closed after replying.
        length = (self.headers.get("Content-Length") or "0").strip()
        self._unread_body = "Transfer-Encoding" in self.headers or length != "0"
        try:
            for pattern, methods, name in ROUTES:
                m = pattern.match(path)
                if not m:
                    continue
                if self.command not in methods:
                    self.close_connection = True
                    self._error(405, f"{self.command} is not allowed here", api, {"Allow": ", ".join(methods)})
                    return
                getattr(self, f"route_{name}")(*m.groups())
                return
            self._error(404, "not found", api)
        except RequestError as exc:
            self._error(exc.status, str(exc), api)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception:  # a bug: say so without leaking details, keep serving
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self._error(500, "internal error", api)
            except OSError:
                pass

    # -- body ------------------------------------------------------------------------------------------
    def _read_json(self):
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            raise RequestError("send the body with a Content-Length, not chunked", 411)
        if len(self.headers.get_all("Content-Length") or []) > 1:
            raise RequestError("more than one Content-Length header", 400)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            raise RequestError("a Content-Length header is required", 411)
        length = _decimal(length_text.strip())
        if length is None:
            self.close_connection = True
            raise RequestError("bad Content-Length", 400)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise RequestError(f"body too large: {length} bytes, the limit is {MAX_BODY_BYTES}", 413)
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            self.close_connection = True
            raise RequestError("the body must be JSON (Content-Type: application/json)", 415)
        data = self.rfile.read(length)
        self._unread_body = False
        if len(data) != length:
            self.close_connection = True
            raise RequestError("the body is shorter than its Content-Length", 400)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("the body is not UTF-8", 400) from None
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise RequestError(f"malformed JSON: {str(exc)[:120]}", 400) from None

    # -- routes ----------------------------------------------------------------------------------------
    def route_no_token(self) -> None:
        self._message_page(
            401,
            "Personal link needed",
            "This evaluation is open only through a personal link; ask the study organiser.",
        )

    def route_health(self) -> None:
        self._json(200, {"ok": True, "study": self.server.study.name})

    def route_favicon(self) -> None:
        self._headers(204, "image/x-icon", 0, {"Cache-Control": "max-age=86400"})

    def route_static(self, name: str) -> None:
        if name not in STATIC_FILES:
            raise RequestError("not found", 404)
        body = self.server.assets[name]
        self._send(200, body, STATIC_TYPES[Path(name).suffix], {"Cache-Control": "no-cache"})

    def route_rater_page(self, token: str) -> None:
        self.server.study.check_rater(token)
        self._page(200, "rater.html")

    def route_admin_page(self, token: str) -> None:
        self.server.study.check_admin(token)
        self._page(200, "admin.html")

    def route_api_next(self, token: str) -> None:
        self._json(200, self.server.study.next_task(token, self.server.lease_seconds))

    def route_api_submit(self, token: str, task_key: str) -> None:
        self.server.study.check_rater(token)  # 401/403 before anything is read
        body = self._read_json()
        self._json(200, self.server.study.submit(token, task_key, body))

    def route_api_progress(self, token: str) -> None:
        self.server.study.check_admin(token)
        self._json(200, self.server.study.progress(self.server.lease_seconds))

    def route_api_video(self, token: str, video_key: str) -> None:
        path = self.server.study.video_path_for_rater(token, video_key)
        self._send_file(path, "video/mp4")

    def _send_file(self, path: Path, ctype: str) -> None:
        with open(path, "rb") as f:
            size = path.stat().st_size
            start, end, status = 0, size - 1, 200
            extra = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
            rng = self.headers.get("Range")
            if rng is not None and size > 0:
                parsed = _parse_range(rng, size)
                if parsed == "unsatisfiable":
                    self._headers(416, "text/plain; charset=utf-8", 0, {**extra, "Content-Range": f"bytes */{size}"})
                    return
                if parsed is not None:
                    start, end = parsed
                    status = 206
                    extra["Content-Range"] = f"bytes {start}-{end}/{size}"
            length = max(0, end - start + 1)
            self._headers(status, ctype, length, extra)
            if self.command == "HEAD":
                return
            f.seek(start)
            left = length
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
_BIG = 10**18  # stands for any longer number: larger than any body or file this server handles


def _decimal(text: str) -> int | None:
    """A non-negative decimal of ASCII digits only, or None. `str.isdigit()` and `int()` both accept Unicode
    digits (and differ on which), and `int()` refuses more than 4300 digits: neither may reach a header parse.
    Numbers over 18 digits come back as 10**18."""
    if not _DECIMAL.fullmatch(text):
        return None
    return int(text) if len(text) <= 18 else _BIG


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_range(value: str, size: int):
    """(start, end) of a single `bytes=` range, 'unsatisfiable', or None to ignore the header (RFC 9110)."""
    m = re.fullmatch(r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", value, re.ASCII)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if first:
        start = _decimal(first)
        end = _decimal(last) if last else size - 1
        if last and end < start:
            return None
        if start >= size:
            return "unsatisfiable"
        return start, min(end, size - 1)
    suffix = _decimal(last)
    if suffix == 0:
        return "unsatisfiable"
    return max(0, size - suffix), size - 1


def make_server(
    study: Study, host: str = "127.0.0.1", port: int = 8000, lease_seconds: float = DEFAULT_LEASE_SECONDS, quiet=False
) -> JuiceServer:
    try:
        return JuiceServer((host, port), study, lease_seconds, quiet)
    except OSError as exc:
        from emu_video.errors import UserError

        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
