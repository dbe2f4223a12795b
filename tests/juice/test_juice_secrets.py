"""Access tokens on disk: only their hashes are stored, the study is private to its owner, and a study made
with plain tokens (schema 1) is migrated when opened."""

import contextlib
import os
import sqlite3
import stat

import pytest

from emu_video.juice.store import Forbidden, Study, token_hash


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def _db_bytes(study):
    return b"".join(p.read_bytes() for p in study.folder.glob("study.sqlite*"))


def test_tokens_are_stored_as_hashes_in_private_files(make_study):
    study, raters = make_study(pairs=2, raters=3)
    admin = study.admin_token
    tokens = [t for _, t in raters]
    assert _mode(study.folder) == 0o700 and _mode(study.folder / "videos") == 0o700
    with contextlib.closing(study.connect()) as held:  # a server's connection: the WAL and -shm files exist
        held.execute("SELECT COUNT(*) FROM raters").fetchone()
        study.next_task(tokens[0])
        files = sorted(study.folder.glob("study.sqlite*"))
        assert len(files) == 3 and all(_mode(p) == 0o600 for p in files), [(p.name, oct(_mode(p))) for p in files]
        blob = _db_bytes(study)
    for token in tokens + [admin]:
        assert token.encode() not in blob
    # What a copy of the database holds does not open anything.
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM raters ORDER BY id")]
        stored_admin = conn.execute("SELECT value FROM meta WHERE key = 'admin_token_sha256'").fetchone()[0]
    assert stored == [token_hash(t) for t in tokens] and stored_admin == token_hash(admin)
    for fake in stored:
        with pytest.raises(Forbidden):
            study.check_rater(fake)
    with pytest.raises(Forbidden):
        study.check_admin(stored_admin)
    assert study.check_rater(tokens[1])["label"] == raters[1][0]
    study.check_admin(admin)
    # Opened later, the study no longer knows the admin token itself.
    with pytest.raises(Exception, match="stored only as a hash"):
        _ = Study(study.folder).admin_token


def _as_schema_1(study, tokens, admin):
    """Turn a study into what version 1 wrote: plain tokens, world-readable files."""
    with contextlib.closing(sqlite3.connect(study.db_path)) as conn, conn:
        conn.execute("ALTER TABLE raters RENAME COLUMN token_hash TO token")
        for label, token in tokens:
            conn.execute("UPDATE raters SET token = ? WHERE label = ?", (token, label))
        conn.execute("DELETE FROM meta WHERE key = 'admin_token_sha256'")
        conn.execute("INSERT INTO meta (key, value) VALUES ('admin_token', ?)", (admin,))
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    os.chmod(study.folder, 0o755)
    for p in study.folder.glob("study.sqlite*"):
        os.chmod(p, 0o644)


def test_a_study_with_plain_tokens_is_migrated_when_opened(make_study):
    study, raters = make_study(pairs=2, raters=2)
    admin = study.admin_token
    task = study.next_task(raters[0][1])["task"]
    _as_schema_1(study, raters, admin)
    assert raters[0][1].encode() in _db_bytes(study)

    migrated = Study(study.folder)
    assert migrated.meta["schema_version"] == "2" and "admin_token" not in migrated.meta
    blob = _db_bytes(migrated)
    for _, token in raters:
        assert token.encode() not in blob
    assert admin.encode() not in blob
    assert _mode(migrated.folder) == 0o700 and all(_mode(p) == 0o600 for p in migrated.folder.glob("study.sqlite*"))
    # The old links keep working, and the rater keeps their open task.
    assert migrated.next_task(raters[0][1])["task"]["id"] == task["id"]
    migrated.check_admin(admin)
    assert migrated.set_rater_active(raters[1][1], False) == raters[1][0]  # revoke by token still works
    with pytest.raises(Forbidden, match="revoked"):
        migrated.check_rater(raters[1][1])
    Study(study.folder)  # opening it again is a no-op
