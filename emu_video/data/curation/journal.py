"""The resumable record of scored sources: `OUT/scores.jsonl`, one JSON line per manifest row, appended and
flushed as each row is done. A rerun skips every row whose file (path, size, modification time), caption
and measuring settings are unchanged; thresholds are applied afterwards, so changing them rescoring nothing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

JOURNAL_NAME = "scores.jsonl"


def source_key(path: str, caption: str, settings: dict) -> str:
    """Identity of one row's measurement: the file as it is now, its caption and the measuring settings."""
    try:
        st = os.stat(path)
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    text = json.dumps([str(path), stamp, caption, settings], sort_keys=True)
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


class Journal:
    def __init__(self, folder: Path):
        self.path = Path(folder) / JOURNAL_NAME
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a crash: that row is redone
                        continue
                    if isinstance(entry, dict) and "key" in entry:
                        self.entries[entry["key"]] = entry

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def add(self, entry: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.entries[entry["key"]] = entry
