"""Create a JUICE study: pair the videos of two systems by prompt, bring each pair to one spec, store it."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from emu_video.errors import UserError
from emu_video.juice.process import _parse_aspect, process_pair
from emu_video.juice.prompts import Prompt, find_videos, load_prompts
from emu_video.juice.store import (
    DB_NAME,
    VIDEO_DIR,
    Study,
    check_study_name,
    connect,
    init_db,
    make_private_dir,
    new_token,
    token_hash,
    write_tx,
)

MAX_SYSTEM_NAME = 64


def _system_name(name: str | None, folder: Path) -> str:
    text = " ".join((name or folder.resolve().name or "system").split())
    if not text or len(text) > MAX_SYSTEM_NAME:
        raise UserError(f"system names must be 1-{MAX_SYSTEM_NAME} characters, got {text!r}")
    return text


def _process_job(job: tuple) -> dict:
    src_a, src_b, out_a, out_b, aspect = job
    return process_pair(src_a, src_b, out_a, out_b, aspect)


def create_study(
    root: str | Path,
    name: str,
    dir_a: str | Path,
    dir_b: str | Path,
    prompts_file: str | Path,
    *,
    name_a: str | None = None,
    name_b: str | None = None,
    aspect: str | None = None,
    raters_per_pair: int = 5,
    skip_missing: bool = False,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> Study:
    """Build `root/name` from two folders of videos named by prompt id; fails before writing anything on bad input."""
    check_study_name(name)
    root, dir_a, dir_b = Path(root), Path(dir_a), Path(dir_b)
    if raters_per_pair < 1 or raters_per_pair % 2 == 0 or raters_per_pair > 99:
        raise UserError(f"--raters-per-pair must be odd (so a majority exists), got {raters_per_pair}")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    _parse_aspect(aspect)
    folder = root / name
    if folder.exists():
        raise UserError(f"study {name!r} already exists at {folder}; pick another --name or remove that folder")
    if dir_a.resolve() == dir_b.resolve():
        raise UserError("--a and --b are the same folder; a study compares two different systems")
    system_a, system_b = _system_name(name_a, dir_a), _system_name(name_b, dir_b)
    if system_a == system_b:
        raise UserError(f"both systems are named {system_a!r}; give them distinct --a-name and --b-name")

    prompts = load_prompts(prompts_file)
    found_a, missing_a = find_videos(dir_a, prompts, "A")
    found_b, missing_b = find_videos(dir_b, prompts, "B")
    if (missing_a or missing_b) and not skip_missing:
        lines = []
        for label, folder_, missing in (("A", dir_a, missing_a), ("B", dir_b, missing_b)):
            if missing:
                shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
                lines.append(f"system {label} ({folder_}) has no video for {len(missing)} prompt(s): {shown}")
        raise UserError(
            "; ".join(lines) + ". Videos must be named <prompt id>.mp4 (or .webm/.mkv/.mov/.avi/.gif); "
            "pass --skip-missing to leave those prompts out"
        )
    paired: list[Prompt] = [p for p in prompts if p.id in found_a and p.id in found_b]
    if not paired:
        raise UserError("no prompt has a video in both folders")
    skipped = len(prompts) - len(paired)
    if skipped:
        log(f"skipping {skipped} prompt(s) without a video in both folders")

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.creating-{os.getpid()}-{new_token(4)}"
    make_private_dir(tmp)  # the study holds access tokens (hashed) and unreleased videos
    make_private_dir(tmp / VIDEO_DIR)
    try:
        admin_token = new_token()
        init_db(
            tmp / DB_NAME,
            {
                "name": name,
                "system_a": system_a,
                "system_b": system_b,
                "raters_per_pair": raters_per_pair,
                "admin_token_sha256": token_hash(admin_token),
                "created_at": time.time(),
                "aspect": aspect or "auto",
                "prompts_file": str(Path(prompts_file).resolve()),
            },
        )
        keys = [(new_token(12), new_token(12)) for _ in paired]
        jobs_list = [
            (
                str(found_a[p.id]),
                str(found_b[p.id]),
                str(tmp / VIDEO_DIR / f"{ka}.mp4"),
                str(tmp / VIDEO_DIR / f"{kb}.mp4"),
                aspect,
            )
            for p, (ka, kb) in zip(paired, keys)
        ]
        if jobs == 1:
            results = (_process_job(job) for job in jobs_list)
            pool = None
        else:
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))
            results = pool.map(_process_job, jobs_list)
        try:
            with_info = []
            for i, (prompt, info) in enumerate(zip(paired, results), 1):
                s = info["spec"]
                log(
                    f"[{i}/{len(paired)}] {prompt.id}: A {info['a']['width']}x{info['a']['height']} "
                    f"{info['a']['fps']:g} fps {info['a']['frames']} frames, B {info['b']['width']}x"
                    f"{info['b']['height']} {info['b']['fps']:g} fps {info['b']['frames']} frames -> "
                    f"{s['width']}x{s['height']} {s['fps']:g} fps {s['num_frames']} frames ({s['duration']:.2f} s)"
                )
                with_info.append((prompt, info))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        conn = connect(tmp / DB_NAME)
        try:
            with write_tx(conn):
                for (prompt, info), (ka, kb), job in zip(with_info, keys, jobs_list):
                    ids = []
                    for system, key, src in (("a", ka, job[0]), ("b", kb, job[1])):
                        cur = conn.execute(
                            "INSERT INTO videos (key, file, system, source, info) VALUES (?, ?, ?, ?, ?)",
                            (key, f"{VIDEO_DIR}/{key}.mp4", system, str(Path(src).resolve()), json.dumps(info[system])),
                        )
                        ids.append(cur.lastrowid)
                    conn.execute(
                        "INSERT INTO pairs (prompt_id, prompt, video_a, video_b, spec) VALUES (?, ?, ?, ?, ?)",
                        (prompt.id, prompt.text, ids[0], ids[1], json.dumps(info["spec"])),
                    )
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        if folder.exists():
            raise UserError(f"study {name!r} appeared at {folder} while this one was being created")
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    study = Study(folder)
    study._admin_token = admin_token  # shown once by `create`; the database keeps only its hash
    return study


def make_study_from_files(
    root: str | Path,
    name: str,
    pairs: list[tuple[str, str, Path, Path]],
    *,
    system_a: str = "A",
    system_b: str = "B",
    raters_per_pair: int = 5,
) -> Study:
    """A study from already matched video files (prompt id, prompt, video A, video B), copied as they are.

    For tests and for pairs processed elsewhere; `create_study` is the normal way in.
    """
    check_study_name(name)
    folder = Path(root) / name
    if folder.exists():
        raise UserError(f"study {name!r} already exists at {folder}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    make_private_dir(folder)
    make_private_dir(folder / VIDEO_DIR)
    admin_token = new_token()
    init_db(
        folder / DB_NAME,
        {
            "name": name,
            "system_a": system_a,
            "system_b": system_b,
            "raters_per_pair": raters_per_pair,
            "admin_token_sha256": token_hash(admin_token),
            "created_at": time.time(),
            "aspect": "given",
            "prompts_file": "",
        },
    )
    conn = connect(folder / DB_NAME)
    try:
        with write_tx(conn):
            for pid, text, path_a, path_b in pairs:
                ids = []
                for system, src in (("a", path_a), ("b", path_b)):
                    key = new_token(12)
                    shutil.copyfile(src, folder / VIDEO_DIR / f"{key}.mp4")
                    cur = conn.execute(
                        "INSERT INTO videos (key, file, system, source, info) VALUES (?, ?, ?, ?, ?)",
                        (key, f"{VIDEO_DIR}/{key}.mp4", system, str(src), "{}"),
                    )
                    ids.append(cur.lastrowid)
                conn.execute(
                    "INSERT INTO pairs (prompt_id, prompt, video_a, video_b, spec) VALUES (?, ?, ?, ?, ?)",
                    (pid, text, ids[0], ids[1], "{}"),
                )
    finally:
        conn.close()
    study = Study(folder)
    study._admin_token = admin_token
    return study
