"""Real media files for data and training tests: Shapes World clips (or simple moving squares when the
Shapes World renderer is not installed), plus deliberately broken files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emu_video.io.video import write_image, write_video


def moving_square_clip(num_frames: int = 65, size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.full((num_frames, size, size, 3), 16, dtype=np.uint8)
    color = rng.integers(60, 250, size=3)
    x0, y0 = rng.integers(4, size // 2, size=2)
    for t in range(num_frames):
        x = int(x0 + t * (size // 3) / num_frames)
        frames[t, y0 : y0 + size // 4, x : x + size // 4] = color
    return frames


def _fallback_dataset(root: Path, num_videos: int, num_images: int) -> None:
    with open(root / "videos.jsonl", "w") as fh:
        for i in range(num_videos):
            rel = f"videos/{i:06d}.mp4"
            write_video(root / rel, moving_square_clip(seed=i), fps=16)
            row = {"path": rel, "caption": f"a square moves right {i}", "fps": 16, "num_frames": 65}
            fh.write(json.dumps(row) + "\n")
    with open(root / "images.jsonl", "w") as fh:
        for i in range(num_images):
            rel = f"images/{i:06d}.png"
            write_image(root / rel, moving_square_clip(1, seed=100 + i)[0])
            fh.write(json.dumps({"path": rel, "caption": f"a square {i}"}) + "\n")


def make_media_dataset(root: Path, num_videos: int = 6, num_images: int = 6) -> Path:
    """`root/videos.jsonl` + `root/images.jsonl` over real mp4 / png files (Shapes World format)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        from emu_video.shapes.datasets import make_dataset
    except ImportError:
        _fallback_dataset(root, num_videos, num_images)
    else:
        make_dataset(root, num_videos, num_images, seed=0, progress=False)
    return root


def write_corrupt_video(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return path


def write_truncated_video(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 3])
    return dst


def write_manifest_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
