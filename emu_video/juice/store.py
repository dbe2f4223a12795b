"""A JUICE study on disk: a folder with `study.sqlite` (SQLite in WAL mode) and the processed videos.

Every query is parameterised. Writes run in `BEGIN IMMEDIATE` transactions, so concurrent raters are
serialised by SQLite itself: a vote is stored once or not at all, never twice. The database also enforces
the protocol: one task and one vote per (rater, pair), and never more votes on a pair than raters per pair.

Access tokens are stored only as SHA-256 hashes (compared in constant time), so a copy of the database
cannot be used to vote or to see progress; the study folder is 0700 and its database files 0600. A study
made before (schema 1, plain tokens) is migrated when it is opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from emu_video.errors import UserError
from emu_video.juice.protocol import AXES, QUESTION_BY_AXIS, SIDES, questions_json

SCHEMA_VERSION = 2  # 2: tokens stored as SHA-256 hashes (1 stored them in plain text)
DB_NAME = "study.sqlite"
VIDEO_DIR = "videos"
STUDY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@ -]{0,63}$")
DEFAULT_LEASE_SECONDS = 3600.0
POOL_SIZE = 16  # idle database connections a Study keeps for reuse

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE videos (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL UNIQUE,
    system TEXT NOT NULL CHECK (system IN ('a', 'b')),
    source TEXT NOT NULL,
    info TEXT NOT NULL
);
CREATE TABLE pairs (
    id INTEGER PRIMARY KEY,
    prompt_id TEXT NOT NULL UNIQUE,
    prompt TEXT NOT NULL,
    video_a INTEGER NOT NULL UNIQUE REFERENCES videos(id),
    video_b INTEGER NOT NULL UNIQUE REFERENCES videos(id),
    spec TEXT NOT NULL
);
CREATE TABLE raters (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at REAL NOT NULL,
    last_seen_at REAL
);
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    left_system TEXT NOT NULL CHECK (left_system IN ('a', 'b')),
    status TEXT NOT NULL CHECK (status IN ('open', 'done', 'expired')),
    assigned_at REAL NOT NULL,
    seen_at REAL NOT NULL,
    UNIQUE (rater_id, pair_id)
);
CREATE INDEX tasks_by_pair ON tasks (pair_id, status);
CREATE INDEX tasks_by_rater ON tasks (rater_id, status);
CREATE TABLE votes (
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL UNIQUE REFERENCES tasks(id),
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    left_system TEXT NOT NULL CHECK (left_system IN ('a', 'b')),
    quality TEXT NOT NULL CHECK (quality IN ('a', 'b')),
    faithfulness TEXT NOT NULL CHECK (faithfulness IN ('a', 'b')),
    submitted_at REAL NOT NULL,
    seconds REAL NOT NULL,
    UNIQUE (rater_id, pair_id)
);
CREATE INDEX votes_by_pair ON votes (pair_id);
CREATE TABLE vote_reasons (
    vote_id INTEGER NOT NULL REFERENCES votes(id),
    axis TEXT NOT NULL CHECK (axis IN ('quality', 'faithfulness')),
    reason TEXT NOT NULL,
    PRIMARY KEY (vote_id, axis, reason)
);
CREATE TRIGGER votes_per_pair_cap BEFORE INSERT ON votes
WHEN (SELECT COUNT(*) FROM votes WHERE pair_id = NEW.pair_id)
     >= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'raters_per_pair')
BEGIN
    SELECT RAISE(ABORT, 'pair already has all its votes');
END;
"""


class RequestError(Exception):
    """A request the study refuses; `status` is the HTTP status that says why."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(RequestError):
    status = 400


class Unauthorized(RequestError):
    status = 401


class Forbidden(RequestError):
    status = 403


class NotFound(RequestError):
    status = 404


class Conflict(RequestError):
    status = 409


def new_token(nbytes: int = 18) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """What the database keeps of an access token. Tokens are 144 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def make_private_dir(path: Path) -> None:
    """Create a folder only its owner can enter (0700, whatever the umask)."""
    path.mkdir(mode=0o700, parents=True)
    os.chmod(path, 0o700)


def _tighten_permissions(folder: Path) -> None:
    """Make an existing study private: folder 0700, database files 0600 (best effort: not if not ours)."""
    for path, mode in [(folder, 0o700)] + [(folder / f"{DB_NAME}{s}", 0o600) for s in ("", "-wal", "-shm")]:
        try:
            if path.exists() and path.stat().st_mode & 0o777 & ~mode:
                os.chmod(path, mode)
        except OSError:
            pass


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not STUDY_NAME_RE.match(name) or ".." in name:
        raise UserError(
            f"bad study name {name!r}: use 1-64 letters, digits, '_', '-', '.', starting with a letter or digit"
        )
    return name


def connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db_path), timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 60000")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


@contextlib.contextmanager
def write_tx(conn: sqlite3.Connection):
    """An IMMEDIATE transaction: it takes the write lock up front, so read-then-write decisions stay valid."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def init_db(db_path: Path, meta: dict[str, str]) -> None:
    # Created 0600 before SQLite opens it; SQLite gives the -wal and -shm files the same mode.
    os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.chmod(db_path, 0o600)
    conn = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise UserError(f"cannot put {db_path} in WAL mode (the file system may not support it)")
        conn.executescript("BEGIN;" + SCHEMA + "COMMIT;")
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [(k, str(v)) for k, v in {**meta, "schema_version": SCHEMA_VERSION}.items()],
        )
    finally:
        conn.close()


@dataclass
class Submission:
    choices: dict[str, str]  # axis -> 'left' | 'right'
    reasons: dict[str, tuple[str, ...]]  # axis -> sorted reason keys


def parse_submission(obj) -> Submission:
    """Check a rater's answer: both questions, a side each, and at least one known reason each."""
    if not isinstance(obj, dict):
        raise BadRequest("the body must be a JSON object with 'quality' and 'faithfulness'")
    extra = sorted(set(obj) - set(AXES))
    if extra:
        raise BadRequest(f"unknown field(s): {', '.join(map(repr, extra[:5]))}")
    choices, reasons = {}, {}
    for axis in AXES:
        question = QUESTION_BY_AXIS[axis]
        answer = obj.get(axis)
        if answer is None:
            raise BadRequest(f"answer the {axis} question: {question.text}")
        if not isinstance(answer, dict) or set(answer) - {"choice", "reasons"}:
            raise BadRequest(f"'{axis}' must be an object with 'choice' and 'reasons'")
        choice = answer.get("choice")
        if choice not in SIDES:
            raise BadRequest(f"{axis}: 'choice' must be 'left' or 'right'")
        given = answer.get("reasons")
        if not isinstance(given, list) or not all(isinstance(r, str) for r in given):
            raise BadRequest(f"{axis}: 'reasons' must be a list of reason names")
        if not given:
            raise BadRequest(f"{axis}: tick at least one reason for your choice")
        unknown = [r for r in given if r not in question.reason_keys]
        if unknown:
            raise BadRequest(f"{axis}: unknown reason {unknown[0][:40]!r}")
        if len(set(given)) != len(given):
            raise BadRequest(f"{axis}: a reason is listed twice")
        choices[axis] = choice
        reasons[axis] = tuple(sorted(given))
    return Submission(choices, reasons)


def _side_to_system(side: str, left_system: str) -> str:
    other = "b" if left_system == "a" else "a"
    return left_system if side == "left" else other


class Study:
    """An existing study folder."""

    def __init__(self, folder: Path):
        # Writers of this process queue here, not in SQLite: SQLite's busy handler polls with sleeps of up to
        # 100 ms, so under contention a write could wait seconds while others went ahead (the load's p99).
        self._write_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self.folder = Path(folder)
        self.db_path = self.folder / DB_NAME
        if not self.db_path.is_file():
            raise UserError(f"no study at {self.folder} (missing {DB_NAME}); create one with `emu-video juice create`")
        with contextlib.closing(self.connect()) as conn:
            try:
                self.meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}
            except sqlite3.DatabaseError as exc:
                raise UserError(f"{self.db_path} is not a JUICE study database: {exc}") from exc
        version = self.meta.get("schema_version", "0")
        if version == "1":
            self._migrate_plain_tokens()
        elif version != str(SCHEMA_VERSION):
            raise UserError(f"{self.db_path}: unsupported study schema version {version}")
        _tighten_permissions(self.folder)
        self._admin_token: str | None = None  # known only to the process that made it

    def _migrate_plain_tokens(self) -> None:
        """Schema 1 -> 2: replace the plain rater and admin tokens by their hashes, and scrub the old text."""
        with contextlib.closing(self.connect()) as conn:
            conn.execute("PRAGMA secure_delete = ON")  # freed and overwritten pages are zeroed
            with write_tx(conn):
                if conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1":
                    conn.execute("ALTER TABLE raters RENAME COLUMN token TO token_hash")
                    rows = conn.execute("SELECT id, token_hash FROM raters").fetchall()
                    conn.executemany(
                        "UPDATE raters SET token_hash = ? WHERE id = ?", [(token_hash(r[1]), r[0]) for r in rows]
                    )
                    admin = conn.execute("SELECT value FROM meta WHERE key = 'admin_token'").fetchone()[0]
                    conn.execute("DELETE FROM meta WHERE key = 'admin_token'")
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('admin_token_sha256', ?)", (token_hash(admin),)
                    )
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            with contextlib.suppress(sqlite3.OperationalError):  # busy (a server is running): done next time
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}

    @classmethod
    def open(cls, root: str | Path, name: str) -> Study:
        check_study_name(name)
        return cls(Path(root) / name)

    # -- basic properties -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def raters_per_pair(self) -> int:
        return int(self.meta["raters_per_pair"])

    @property
    def admin_token(self) -> str:
        """The admin token, only in the process that created it (the database keeps its hash)."""
        if self._admin_token is None:
            raise UserError(
                "the admin token is stored only as a hash; make a new admin link with "
                f"`emu-video juice new-link {self.name} --admin`"
            )
        return self._admin_token

    def new_admin_token(self) -> str:
        """Replace the admin token (the old admin link stops working); return the new one."""
        token = new_token()
        with self._writing() as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'admin_token_sha256'", (token_hash(token),))
        self.meta["admin_token_sha256"] = token_hash(token)
        self._admin_token = token
        return token

    @property
    def system_names(self) -> dict[str, str]:
        return {"a": self.meta["system_a"], "b": self.meta["system_b"]}

    def connect(self) -> sqlite3.Connection:
        return connect(self.db_path)

    @contextlib.contextmanager
    def _writing(self):
        """A connection in an IMMEDIATE transaction, taken in turn by this process's threads."""
        with self._pooled() as conn, self._write_lock, write_tx(conn):
            yield conn

    @contextlib.contextmanager
    def _pooled(self):
        """A connection of this process's small pool (opening one, with its PRAGMAs, on every request cost
        more than the request's own queries)."""
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self.connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if conn.in_transaction:
            conn.close()
            return
        with self._pool_lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close the pooled connections (the study stays usable: new ones are opened as needed)."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- raters -----------------------------------------------------------------------------------------
    def add_raters(self, count: int, prefix: str = "rater") -> list[tuple[str, str]]:
        """Create `count` raters labelled PREFIX-001, PREFIX-002, ...; return (label, token) pairs."""
        if count < 1 or count > 10000:
            raise UserError(f"--count must be between 1 and 10000, got {count}")
        if not LABEL_RE.match(prefix) or len(prefix) > 50:
            raise UserError(f"bad rater label prefix {prefix!r}: use letters, digits, '_', '-', '.', '@'")
        made = []
        with self._writing() as conn:
            existing = {r[0] for r in conn.execute("SELECT label FROM raters")}
            index = 1
            for _ in range(count):
                while f"{prefix}-{index:03d}" in existing:
                    index += 1
                label = f"{prefix}-{index:03d}"
                existing.add(label)
                token = new_token()
                conn.execute(
                    "INSERT INTO raters (token_hash, label, created_at) VALUES (?, ?, ?)",
                    (token_hash(token), label, time.time()),
                )
                made.append((label, token))
        return made

    def set_rater_active(self, who: str, active: bool) -> str:
        """Revoke (or restore) a rater by label or token; a revoked rater's open task is released."""
        with self._writing() as conn:
            row = self._rater_by_label_or_token(conn, who)
            conn.execute("UPDATE raters SET active = ? WHERE id = ?", (1 if active else 0, row["id"]))
            if not active:
                conn.execute("UPDATE tasks SET status = 'expired' WHERE rater_id = ? AND status = 'open'", (row["id"],))
            return row["label"]

    def new_rater_token(self, who: str) -> tuple[str, str]:
        """Give a rater (by label or token) a new token: the old link stops working, votes and tasks stay.
        Returns (label, new token)."""
        token = new_token()
        with self._writing() as conn:
            row = self._rater_by_label_or_token(conn, who)
            conn.execute("UPDATE raters SET token_hash = ? WHERE id = ?", (token_hash(token), row["id"]))
            return row["label"], token

    @staticmethod
    def _rater_by_label_or_token(conn: sqlite3.Connection, who: str) -> sqlite3.Row:
        row = conn.execute(
            "SELECT id, label FROM raters WHERE label = ? OR token_hash = ?", (who, token_hash(who))
        ).fetchone()
        if row is None:
            raise UserError(f"no rater with label or token {who!r}")
        return row

    def raters(self) -> list[dict]:
        with self._pooled() as conn:
            rows = conn.execute(
                """
                SELECT r.id, r.label, r.active, r.created_at, r.last_seen_at,
                       (SELECT COUNT(*) FROM votes v WHERE v.rater_id = r.id) AS done,
                       (SELECT COUNT(*) FROM tasks t WHERE t.rater_id = r.id AND t.status = 'open') AS open
                FROM raters r ORDER BY r.id
                """
            ).fetchall()
        return [dict(r) for r in rows]

    def _rater(self, conn: sqlite3.Connection, token) -> sqlite3.Row:
        if not isinstance(token, str) or not token:
            raise Unauthorized("this page needs your personal link (it has no access token)")
        if not TOKEN_RE.match(token):
            raise Forbidden("unknown access token; check your personal link")
        digest = token_hash(token)
        row = conn.execute("SELECT id, label, active, token_hash FROM raters WHERE token_hash = ?", (digest,)).fetchone()
        if row is None or not secrets.compare_digest(row["token_hash"], digest):
            raise Forbidden("unknown access token; check your personal link")
        if not row["active"]:
            raise Forbidden("this link has been revoked; ask the study organiser")
        return row

    def check_rater(self, token) -> dict:
        with self._pooled() as conn:
            return dict(self._rater(conn, token))

    def check_admin(self, token) -> None:
        if not isinstance(token, str) or not token:
            raise Unauthorized("the admin page needs the admin link (it has no access token)")
        with self._pooled() as conn:  # read each time: `new-link --admin` may have replaced it
            stored = conn.execute("SELECT value FROM meta WHERE key = 'admin_token_sha256'").fetchone()[0]
        if not secrets.compare_digest(token_hash(token), stored):
            raise Forbidden("unknown admin token")

    # -- tasks ------------------------------------------------------------------------------------------
    def _task_json(self, conn, task: sqlite3.Row, rater_id: int) -> dict:
        pair = conn.execute(
            """
            SELECT p.prompt, va.key AS key_a, vb.key AS key_b, p.spec
            FROM pairs p JOIN videos va ON va.id = p.video_a JOIN videos vb ON vb.id = p.video_b
            WHERE p.id = ?
            """,
            (task["pair_id"],),
        ).fetchone()
        left, right = (pair["key_a"], pair["key_b"]) if task["left_system"] == "a" else (pair["key_b"], pair["key_a"])
        spec = json.loads(pair["spec"])
        return {
            "id": task["key"],
            "prompt": pair["prompt"],
            "left": {"video": left},
            "right": {"video": right},
            "width": spec.get("width"),
            "height": spec.get("height"),
        }

    def _progress_of(self, conn, rater_id: int) -> dict:
        done = conn.execute("SELECT COUNT(*) FROM votes WHERE rater_id = ?", (rater_id,)).fetchone()[0]
        return {"done": done}

    def next_task(self, token, lease_seconds: float = DEFAULT_LEASE_SECONDS, now: float | None = None) -> dict:
        """The rater's open task, or a new one on a pair that still needs raters and that they have not seen.

        Pairs closest to completion come first (ties in random order), so finished pairs accumulate. A task
        left open longer than `lease_seconds` since its rater last loaded it may be given to someone else.
        """
        now = time.time() if now is None else now
        cutoff = now - lease_seconds
        n = self.raters_per_pair
        with self._writing() as conn:
            rater = self._rater(conn, token)
            rid = rater["id"]
            conn.execute("UPDATE raters SET last_seen_at = ? WHERE id = ?", (now, rid))
            task = conn.execute(
                "SELECT * FROM tasks WHERE rater_id = ? AND status = 'open' ORDER BY id LIMIT 1", (rid,)
            ).fetchone()
            if task is not None:
                conn.execute("UPDATE tasks SET seen_at = ? WHERE id = ?", (now, task["id"]))
            else:
                pair = conn.execute(
                    """
                    SELECT pair_id, used FROM (
                        SELECT p.id AS pair_id,
                               (SELECT COUNT(*) FROM tasks t WHERE t.pair_id = p.id
                                  AND (t.status = 'done' OR (t.status = 'open' AND t.seen_at >= ?))) AS used
                        FROM pairs p
                        WHERE NOT EXISTS (SELECT 1 FROM tasks t2 WHERE t2.pair_id = p.id AND t2.rater_id = ?)
                    ) WHERE used < ? ORDER BY used DESC, random() LIMIT 1
                    """,
                    (cutoff, rid, n),
                ).fetchone()
                if pair is None:
                    return {"task": None, "progress": self._progress_of(conn, rid), "questions": questions_json()}
                pid = pair["pair_id"]
                # Free the slots of raters who walked away from this pair.
                conn.execute(
                    "UPDATE tasks SET status = 'expired' WHERE pair_id = ? AND status = 'open' AND seen_at < ?",
                    (pid, cutoff),
                )
                left_a = conn.execute(
                    "SELECT COUNT(*) FROM tasks WHERE pair_id = ? AND status != 'expired' AND left_system = 'a'",
                    (pid,),
                ).fetchone()[0]
                left_b = conn.execute(
                    "SELECT COUNT(*) FROM tasks WHERE pair_id = ? AND status != 'expired' AND left_system = 'b'",
                    (pid,),
                ).fetchone()[0]
                # Randomised order, balanced within a pair: 3|2 left/right splits rather than 5|0.
                if left_a != left_b:
                    left = "a" if left_a < left_b else "b"
                else:
                    left = "a" if secrets.randbelow(2) == 0 else "b"
                conn.execute(
                    """INSERT INTO tasks (key, rater_id, pair_id, left_system, status, assigned_at, seen_at)
                       VALUES (?, ?, ?, ?, 'open', ?, ?)""",
                    (new_token(12), rid, pid, left, now, now),
                )
                task = conn.execute("SELECT * FROM tasks WHERE rater_id = ? AND pair_id = ?", (rid, pid)).fetchone()
            return {
                "task": self._task_json(conn, task, rid),
                "progress": self._progress_of(conn, rid),
                "questions": questions_json(),
            }

    def submit(self, token, task_key, body, now: float | None = None) -> dict:
        """Record a vote. Resubmitting the same answer is a no-op that succeeds; a different one is a 409."""
        now = time.time() if now is None else now
        with self._writing() as conn:
            rater = self._rater(conn, token)
            rid = rater["id"]
            if not isinstance(task_key, str) or not TOKEN_RE.match(task_key):
                raise NotFound("no such task")
            task = conn.execute("SELECT * FROM tasks WHERE key = ? AND rater_id = ?", (task_key, rid)).fetchone()
            if task is None:
                raise NotFound("no such task for this rater")
            sub = parse_submission(body)
            systems = {axis: _side_to_system(sub.choices[axis], task["left_system"]) for axis in AXES}
            if task["status"] == "done":
                vote = conn.execute("SELECT * FROM votes WHERE task_id = ?", (task["id"],)).fetchone()
                stored = {
                    axis: tuple(
                        r[0]
                        for r in conn.execute(
                            "SELECT reason FROM vote_reasons WHERE vote_id = ? AND axis = ? ORDER BY reason",
                            (vote["id"], axis),
                        )
                    )
                    for axis in AXES
                }
                same = all(vote[axis] == systems[axis] and stored[axis] == sub.reasons[axis] for axis in AXES)
                if not same:
                    raise Conflict("this task was already answered; answers are final")
                return {"status": "duplicate", "progress": self._progress_of(conn, rid)}
            if task["status"] == "expired":
                raise Conflict("this task expired and went to another rater; load the next task")
            try:
                cur = conn.execute(
                    """INSERT INTO votes (task_id, rater_id, pair_id, left_system, quality, faithfulness,
                                          submitted_at, seconds)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        task["id"],
                        rid,
                        task["pair_id"],
                        task["left_system"],
                        systems["quality"],
                        systems["faithfulness"],
                        now,
                        max(0.0, now - task["assigned_at"]),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"vote refused: {exc}") from exc
            conn.executemany(
                "INSERT INTO vote_reasons (vote_id, axis, reason) VALUES (?, ?, ?)",
                [(cur.lastrowid, axis, reason) for axis in AXES for reason in sub.reasons[axis]],
            )
            conn.execute("UPDATE tasks SET status = 'done', seen_at = ? WHERE id = ?", (now, task["id"]))
            conn.execute("UPDATE raters SET last_seen_at = ? WHERE id = ?", (now, rid))
            return {"status": "recorded", "progress": self._progress_of(conn, rid)}

    # -- videos -----------------------------------------------------------------------------------------
    def video_path_for_rater(self, token, video_key) -> Path:
        """The file of a video the rater has (or had) a task on. Anything else is 404."""
        if not isinstance(video_key, str) or not TOKEN_RE.match(video_key):
            raise NotFound("no such video")
        with self._pooled() as conn:
            rater = self._rater(conn, token)
            row = conn.execute(
                """
                SELECT v.file FROM videos v
                JOIN pairs p ON v.id = p.video_a OR v.id = p.video_b
                JOIN tasks t ON t.pair_id = p.id
                WHERE v.key = ? AND t.rater_id = ? AND t.status IN ('open', 'done')
                LIMIT 1
                """,
                (video_key, rater["id"]),
            ).fetchone()
        if row is None:
            raise NotFound("no such video")
        return self._video_file(row["file"])

    def _video_file(self, relative: str) -> Path:
        base = (self.folder / VIDEO_DIR).resolve()
        path = (self.folder / relative).resolve()
        if base not in path.parents or not path.is_file():
            raise NotFound("no such video")
        return path

    # -- progress and data ------------------------------------------------------------------------------
    def progress(self, lease_seconds: float = DEFAULT_LEASE_SECONDS, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        n = self.raters_per_pair
        with self._pooled() as conn:
            pairs = conn.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
            votes = conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
            per_pair = dict.fromkeys(range(n + 1), 0)
            for row in conn.execute(
                """SELECT c, COUNT(*) FROM (SELECT p.id, (SELECT COUNT(*) FROM votes v WHERE v.pair_id = p.id) AS c
                   FROM pairs p) GROUP BY c"""
            ):
                per_pair[int(row[0])] = row[1]
            open_tasks = conn.execute(
                "SELECT COUNT(*) FROM tasks WHERE status = 'open' AND seen_at >= ?", (now - lease_seconds,)
            ).fetchone()[0]
        raters = [{k: r[k] for k in ("label", "active", "done", "open", "last_seen_at")} for r in self.raters()]
        return {
            "study": self.name,
            "systems": self.system_names,
            "raters_per_pair": n,
            "pairs": pairs,
            "pairs_complete": per_pair.get(n, 0),
            "pairs_by_votes": {str(k): v for k, v in per_pair.items()},
            "votes": votes,
            "votes_needed": pairs * n,
            "open_tasks": open_tasks,
            "raters": raters,
            "now": now,
        }

    def votes(self) -> tuple[list[dict], list[dict]]:
        """All pairs (with prompt) and all votes (with their reasons), for the results."""
        with self._pooled() as conn:
            pairs = [dict(r) for r in conn.execute("SELECT id, prompt_id, prompt, spec FROM pairs ORDER BY id")]
            reasons: dict[int, dict[str, list[str]]] = {}
            for r in conn.execute("SELECT vote_id, axis, reason FROM vote_reasons ORDER BY vote_id, axis, reason"):
                reasons.setdefault(r["vote_id"], {a: [] for a in AXES})[r["axis"]].append(r["reason"])
            votes = []
            for r in conn.execute(
                """SELECT v.*, ra.label AS rater, p.prompt_id FROM votes v
                   JOIN raters ra ON ra.id = v.rater_id JOIN pairs p ON p.id = v.pair_id ORDER BY v.id"""
            ):
                vote = dict(r)
                vote["reasons"] = reasons.get(r["id"], {a: [] for a in AXES})
                votes.append(vote)
        return pairs, votes
