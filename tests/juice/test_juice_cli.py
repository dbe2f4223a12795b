"""`emu-video juice` end to end: create from real videos, raters, revoke, serve, errors."""

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import urllib.request

import pytest
from juice_helpers import make_video

from emu_video.cli.main import main
from emu_video.io.video import probe_video


@pytest.fixture
def inputs(tmp_path):
    a, b = tmp_path / "ours", tmp_path / "theirs"
    a.mkdir()
    b.mkdir()
    ids = ["p001", "p002", "p003"]
    with open(tmp_path / "prompts.jsonl", "w") as fh:
        for i, pid in enumerate(ids):
            fh.write(json.dumps({"id": pid, "prompt": f'prompt {i}: a dog\'s "surf" <b>; DROP TABLE pairs;--'}) + "\n")
            make_video(a / f"{pid}.mp4", 96, 64, 24, 24, border=16)  # 3:2, 24 fps, 1 s
            make_video(b / f"{pid}.mp4", 48, 48, 20 + 4 * i, 16)  # 1:1, 16 fps, 1.25-1.75 s
    return tmp_path, a, b


def test_create_and_manage(inputs, capsys):
    tmp, a, b = inputs
    root = tmp / "studies"
    args = ["juice", "create", "--root", str(root), "--name", "mav", "--a", str(a), "--b", str(b)]
    assert (
        main(args + ["--prompts", str(tmp / "prompts.jsonl"), "--a-name", "Emu Video", "--b-name", "Make-A-Video"]) == 0
    )
    out = capsys.readouterr().out
    assert "Created study 'mav'" in out and "3 pairs" in out and "/admin/" in out
    assert "96x64 24 fps 24 frames" in out and "48x48 16 fps 16 frames" in out

    folder = root / "mav"
    with contextlib.closing(sqlite3.connect(folder / "study.sqlite")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        pairs = conn.execute(
            "SELECT p.prompt_id, p.prompt, va.file, vb.file FROM pairs p JOIN videos va ON va.id = p.video_a "
            "JOIN videos vb ON vb.id = p.video_b ORDER BY p.prompt_id"
        ).fetchall()
    assert [p[0] for p in pairs] == ["p001", "p002", "p003"]
    assert pairs[0][1].endswith("DROP TABLE pairs;--")
    for _, _, fa, fb in pairs:
        ma, mb = probe_video(folder / fa), probe_video(folder / fb)
        assert (ma["width"], ma["height"], ma["frames"], ma["fps"]) == (48, 48, 16, 16.0)
        assert (ma["width"], ma["height"], ma["frames"], ma["fps"]) == (
            mb["width"],
            mb["height"],
            mb["frames"],
            mb["fps"],
        )
        # Video files are named by random keys: nothing tells a rater which system made which.
        assert "ours" not in fa and "theirs" not in fb
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no leftover temporary folder

    assert (
        main(["juice", "add-raters", "mav", "--root", str(root), "--count", "5", "--base-url", "http://10.0.0.5:9000/"])
        == 0
    )
    links = capsys.readouterr().out.strip().splitlines()
    assert len(links) == 5 and links[0].startswith("rater-001\thttp://10.0.0.5:9000/r/")
    assert main(["juice", "add-raters", "mav", "--root", str(root), "--count", "1", "--prefix", "lab"]) == 0
    assert capsys.readouterr().out.startswith("lab-001\t")
    assert main(["juice", "revoke", "mav", "rater-002", "--root", str(root)]) == 0
    assert "rater-002: revoked" in capsys.readouterr().out
    assert main(["juice", "raters", "mav", "--root", str(root)]) == 0
    listing = capsys.readouterr().out
    assert listing.count("\n") == 8 and "revoked" in listing and "lab-001" in listing
    assert "/r/" not in listing and "new-link" in listing  # links are not stored, so not listed
    # A lost link is replaced: the old one stops working, the rater stays who they were.
    old = links[0].rsplit("/", 1)[-1]
    assert main(["juice", "new-link", "mav", "rater-001", "--root", str(root)]) == 0
    label, link = capsys.readouterr().out.strip().split("\t")
    from emu_video.juice.store import Forbidden, Study

    study = Study.open(root, "mav")
    assert label == "rater-001" and study.check_rater(link.rsplit("/", 1)[-1])["label"] == "rater-001"
    with pytest.raises(Forbidden):
        study.check_rater(old)
    assert main(["juice", "new-link", "mav", "--admin", "--root", str(root)]) == 0
    admin = capsys.readouterr().out.strip().rsplit("/", 1)[-1]
    study.check_admin(admin)
    assert main(["juice", "new-link", "mav", "--root", str(root)]) == 2
    assert main(["juice", "new-link", "mav", "nobody", "--root", str(root)]) == 2
    # The study is private to its owner.
    assert (folder.stat().st_mode & 0o777, (folder / "study.sqlite").stat().st_mode & 0o777) == (0o700, 0o600)

    # The same name again is refused without touching the existing study.
    assert main(args + ["--prompts", str(tmp / "prompts.jsonl"), "--a-name", "X", "--b-name", "Y"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_create_errors(inputs, capsys):
    tmp, a, b = inputs
    root = tmp / "studies"
    base = [
        "juice",
        "create",
        "--root",
        str(root),
        "--a",
        str(a),
        "--b",
        str(b),
        "--prompts",
        str(tmp / "prompts.jsonl"),
    ]
    os.remove(b / "p002.mp4")
    assert main(base + ["--name", "s1"]) == 2
    err = capsys.readouterr().err
    assert "system B" in err and "p002" in err and "--skip-missing" in err
    assert not (root / "s1").exists()

    assert main(base + ["--name", "s1", "--skip-missing"]) == 0
    assert "skipping 1 prompt" in capsys.readouterr().out
    with contextlib.closing(sqlite3.connect(root / "s1" / "study.sqlite")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pairs").fetchone()[0] == 2

    for name in ("../evil", "a/b", ".hidden", "x" * 65):
        assert main(base + ["--name", name]) == 2
        assert "bad study name" in capsys.readouterr().err
    assert main(base + ["--name", "s2", "--raters-per-pair", "4"]) == 2
    assert "odd" in capsys.readouterr().err
    assert main(base + ["--name", "s3", "--aspect", "0:1"]) == 2
    assert "aspect" in capsys.readouterr().err
    (a / "p003.mp4").write_bytes(b"garbage")
    assert main(base + ["--name", "s4", "--skip-missing"]) == 2
    assert "p003.mp4" in capsys.readouterr().err
    assert not (root / "s4").exists() and not [p for p in root.iterdir() if p.name.startswith(".")]
    assert main(["juice", "raters", "nope", "--root", str(root)]) == 2
    assert "no study" in capsys.readouterr().err


def test_parallel_create_matches_serial(inputs, capsys):
    tmp, a, b = inputs
    root = tmp / "studies"
    common = ["--root", str(root), "--a", str(a), "--b", str(b), "--prompts", str(tmp / "prompts.jsonl")]
    assert main(["juice", "create", "--name", "par", "--jobs", "2", "--aspect", "1:1"] + common) == 0
    out = capsys.readouterr().out
    assert out.count("-> 48x48 16 fps 16 frames") == 3


def test_serve_command_in_its_own_process(inputs, capsys):
    tmp, a, b = inputs
    root = tmp / "studies"
    common = ["--root", str(root), "--a", str(a), "--b", str(b), "--prompts", str(tmp / "prompts.jsonl")]
    assert main(["juice", "create", "--name", "web"] + common) == 0
    assert main(["juice", "add-raters", "web", "--root", str(root), "--count", "1"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1].rsplit("/", 1)[-1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "emu_video.cli.main", "juice", "serve", "web", "--root", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert base.startswith("http://127.0.0.1:")
        assert "/admin/" in proc.stdout.readline()
        with urllib.request.urlopen(f"{base}/api/r/{token}/next", timeout=10) as resp:
            assert json.load(resp)["task"]["prompt"].startswith("prompt ")
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
    log = proc.stderr.read()
    assert "GET /api/r/.../next" in log and token not in log  # request log without tokens


def test_serve_refuses_bad_numbers_before_serving(inputs, capsys):
    tmp, a, b = inputs
    root = tmp / "studies"
    assert main(["juice", "create", "--name", "srv", "--root", str(root), "--a", str(a), "--b", str(b),
                 "--prompts", str(tmp / "prompts.jsonl")]) == 0
    capsys.readouterr()
    for args, message in [(["--lease-minutes", "nan"], "--lease-minutes must be a positive number"),
                          (["--lease-minutes", "-1"], "--lease-minutes must be a positive number"),
                          (["--port", "70000"], "--port must be 0-65535")]:
        assert main(["juice", "serve", "srv", "--root", str(root), *args]) == 2, args
        assert message in capsys.readouterr().err
