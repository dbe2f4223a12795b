"""JSON files a user hands us (model folders' configs and indexes, caches): read whole or refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from emu_video.errors import UserError


def read_json(path: str | Path, what: str = "JSON file") -> dict:
    """The JSON object in `path`; a missing file, bytes that are not UTF-8, broken JSON or anything but an
    object raises UserError naming the file and saying what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"unreadable {what} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"unreadable {what} {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"unreadable {what} {path}: expected a JSON object, found {type(data).__name__}")
    return data
