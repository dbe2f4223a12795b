"""The curation report: `report.json` (every clip's scores and why it was kept or dropped, the unreadable
files, the settings) and one PNG histogram per score with its threshold drawn."""

from __future__ import annotations

import json
import os
from pathlib import Path

from emu_video.data.curation.filters import Thresholds
from emu_video.data.curation.motion import FRAME_DIFFERENCE, MOTION_VECTORS

# (file stem, title, how to read the score from a clip record, threshold field)
PLOTS = (
    ("motion_vectors", "motion score (motion vectors, px at 512 px short side)",
     lambda c: c["motion"]["score"] if c.get("motion") and c["motion"]["method"] == MOTION_VECTORS else None,
     "min_motion"),
    ("frame_difference", "motion score (frame differences, grey levels)",
     lambda c: c["motion"]["score"] if c.get("motion") and c["motion"]["method"] == FRAME_DIFFERENCE else None,
     "min_motion_diff"),
    ("clip_score", "CLIP score (first frame vs caption)", lambda c: c.get("clip_score"), "min_clip_score"),
    ("aesthetic", "aesthetic score (first frame)", lambda c: c.get("aesthetic"), "min_aesthetic"),
    ("duration", "duration (s)", lambda c: c["info"]["duration"], "min_seconds"),
)


def write_json(path: Path, data: dict) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def plot_histograms(clips: list[dict], thresholds: Thresholds, folder: Path) -> list[Path]:
    """One histogram per score that some clip has, kept and dropped clips stacked, the threshold as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, title, read, field in PLOTS:
        kept = [read(c) for c in clips if c["kept"] and read(c) is not None]
        dropped = [read(c) for c in clips if not c["kept"] and read(c) is not None]
        if not kept and not dropped:
            continue
        limit = getattr(thresholds, field)
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
        ax.hist([kept, dropped], bins=30, stacked=True, label=[f"kept ({len(kept)})", f"dropped ({len(dropped)})"],
                color=["tab:green", "tab:gray"])
        ax.axvline(limit, color="tab:red", linestyle="--", label=f"threshold {limit:g}")
        ax.set_title(title)
        ax.set_xlabel(stem.replace("_", " "))
        ax.set_ylabel("clips")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend()
        fig.tight_layout()
        path = folder / f"{stem}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
