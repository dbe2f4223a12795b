"""Prompt files of a JUICE study: ids and texts, and the videos of each system named by prompt id.

Accepted prompt files (chosen by suffix):

* ``.jsonl`` -- one JSON object a line: ``{"id": "p001", "prompt": "A dog surfing a wave"}``; blank lines
  are skipped.
* ``.csv`` -- a header row with the columns ``id`` and ``prompt`` (other columns are ignored).
* ``.tsv`` / ``.txt`` -- one ``id<TAB>prompt`` a line; blank lines and lines starting with ``#`` are skipped.

A prompt id is 1-128 characters of letters, digits, ``_``, ``-`` and ``.``, starting with a letter or digit;
ids must be unique. The video of prompt ``p001`` is ``p001.mp4`` (or .webm, .mkv, .mov, .avi, .gif) in each
system's folder.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from emu_video.errors import UserError
from emu_video.io.video import VIDEO_SUFFIXES

PROMPT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_PROMPT_CHARS = 4000


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


def _check(entries: list[tuple[str, str, str]], path: Path) -> list[Prompt]:
    prompts: list[Prompt] = []
    seen: dict[str, str] = {}
    for where, pid, text in entries:
        pid = pid.strip()
        text = " ".join(text.split())
        if not PROMPT_ID_RE.match(pid) or ".." in pid:
            raise UserError(
                f"{path}:{where}: bad prompt id {pid!r}: use 1-128 letters, digits, '_', '-', '.', "
                "starting with a letter or digit"
            )
        if not text:
            raise UserError(f"{path}:{where}: prompt {pid!r} has an empty text")
        try:
            text.encode("utf-8")  # a JSON escape of a lone surrogate ("\udcb2") is not text SQLite can store
        except UnicodeEncodeError:
            raise UserError(f"{path}:{where}: prompt {pid!r} is not valid Unicode text (a lone surrogate)") from None
        if len(text) > MAX_PROMPT_CHARS:
            raise UserError(f"{path}:{where}: prompt {pid!r} is longer than {MAX_PROMPT_CHARS} characters")
        if pid in seen:
            raise UserError(f"{path}:{where}: prompt id {pid!r} repeats (first at {seen[pid]})")
        seen[pid] = where
        prompts.append(Prompt(pid, text))
    if not prompts:
        raise UserError(f"{path}: no prompts found")
    return prompts


def load_prompts(path: str | Path) -> list[Prompt]:
    """Read a prompt file (.jsonl, .csv, .tsv or .txt), checking ids and texts."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompt file not found: {path}")
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc})") from exc
    suffix = path.suffix.lower()
    entries: list[tuple[str, str, str]] = []
    if suffix == ".jsonl":
        for i, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{i}: not valid JSON ({exc.msg})") from exc
            if (
                not isinstance(obj, dict)
                or not isinstance(obj.get("id"), (str, int))
                or not isinstance(obj.get("prompt"), str)
            ):
                raise UserError(f'{path}:{i}: expected an object like {{"id": "p001", "prompt": "..."}}')
            entries.append((str(i), str(obj["id"]), obj["prompt"]))
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(raw))
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        if "id" not in fields or "prompt" not in fields:
            raise UserError(f"{path}: the CSV header must name the columns 'id' and 'prompt', got {fields}")
        reader.fieldnames = fields
        for i, row in enumerate(reader, 2):
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            entries.append((str(i), row.get("id") or "", row.get("prompt") or ""))
    elif suffix in (".tsv", ".txt"):
        for i, line in enumerate(raw.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if "\t" not in line:
                raise UserError(f"{path}:{i}: expected 'id<TAB>prompt'")
            pid, text = line.split("\t", 1)
            entries.append((str(i), pid, text))
    else:
        raise UserError(f"{path}: unknown prompt file type {suffix!r}; use .jsonl, .csv, .tsv or .txt")
    return _check(entries, path)


def find_videos(folder: str | Path, prompts: list[Prompt], label: str) -> tuple[dict[str, Path], list[str]]:
    """Map each prompt id to its video in `folder`; also return the ids with no video."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"video folder of system {label} not found: {folder}")
    by_stem: dict[str, list[Path]] = {}
    for p in folder.iterdir():
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."):
            by_stem.setdefault(p.stem, []).append(p)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for prompt in prompts:
        files = by_stem.get(prompt.id, [])
        if len(files) > 1:
            names = ", ".join(sorted(f.name for f in files))
            raise UserError(f"system {label}: prompt {prompt.id!r} has several videos in {folder}: {names}")
        if files:
            found[prompt.id] = files[0]
        else:
            missing.append(prompt.id)
    return found, missing
