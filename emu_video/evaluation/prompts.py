"""Prompt files for evaluation: JSON lines `{"file": "0001.mp4", "prompt": "...", "image": "cond.png"}`.

`file` is a video's file name inside each evaluated folder; `image` (optional, for image-to-video metrics) is a
path relative to the prompt file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emu_video.errors import UserError


@dataclass(frozen=True)
class PromptEntry:
    prompt: str
    image: Path | None = None


def load_prompts(path) -> dict[str, PromptEntry]:
    """file name -> entry; one clear error naming the line for anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompt file not found: {path}")
    out: dict[str, PromptEntry] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("file"), str) or not isinstance(row.get("prompt"), str):
            raise UserError(f'{path}:{n}: each line needs "file" and "prompt" strings')
        image = row.get("image")
        out[Path(row["file"]).name] = PromptEntry(row["prompt"], (path.parent / image) if image else None)
    if not out:
        raise UserError(f"prompt file {path} has no entries")
    return out


def prompt_for(prompts: dict[str, PromptEntry], video: Path) -> PromptEntry:
    entry = prompts.get(video.name)
    if entry is None:
        raise UserError(f"no prompt for {video.name} in the prompt file (add a line with \"file\": \"{video.name}\")")
    return entry
