"""Map-style datasets of pixels + captions over manifests or tar shards.

Items are looked up by a key ``(epoch, index)``: every random choice of a sample (clip start, video
frame) comes from a generator seeded by (seed, epoch, index), so an item is the same whichever worker,
rank or restarted run draws it. An unusable file gives a :class:`Skipped` marker, never an exception
and never a substitute sample: the loader counts it and moves on to the next index of the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from emu_video.data.decode import decode_clip, decode_image
from emu_video.data.frames import ClipSpec, SampleSkipped, sample_rng, to_model_pixels
from emu_video.data.manifest import ManifestRow, read_manifests
from emu_video.data.shards import ShardReader
from emu_video.errors import UserError

MEDIA_KINDS = ("video", "image")


@dataclass
class Skipped:
    index: int
    reason: str
    message: str


class MediaSource:
    """Rows of manifests or samples of shards: (source path or bytes, suffix, caption, display name)."""

    def __init__(self, manifests: Sequence[str] = (), shards: Sequence[str] = ()):
        if bool(manifests) == bool(shards):
            raise UserError("give the data as manifest file(s) or as tar shards (exactly one of the two)")
        self.rows: list[ManifestRow] | None = read_manifests(manifests) if manifests else None
        self.reader: ShardReader | None = ShardReader(shards) if shards else None

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.reader)

    def caption(self, index: int) -> str:
        if self.rows is not None:
            return self.rows[index].caption
        return self.reader.read(index)[2]

    def get(self, index: int):
        if self.rows is not None:
            row = self.rows[index]
            if row.problem:  # e.g. a caption that is not UTF-8: one bad sample, skipped like a corrupt file
                raise SampleSkipped("unreadable", row.problem)
            return row.path, Path(row.path).suffix.lower(), row.caption, row.path
        try:
            data, suffix, caption, _ = self.reader.read(index)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise SampleSkipped("unreadable", f"{self.reader.name(index)}: {exc}") from None
        return data, suffix, caption, self.reader.name(index)


class PixelDataset(Dataset):
    """Video clips (3, T, r, r) or images (3, r, r) in [-1, 1], with their captions.

    kind="video": a clip per `clip` (frames, fps, start). kind="image": an image file, or one random
    frame of a video file (so image stages can also learn from video data).
    """

    def __init__(self, source: MediaSource, kind: str, resolution: int, clip: ClipSpec | None = None, seed: int = 0):
        if kind not in MEDIA_KINDS:
            raise UserError(f"unknown media kind {kind!r}; choose {' or '.join(MEDIA_KINDS)}")
        if kind == "video" and clip is None:
            raise UserError("a video dataset needs a clip spec (frames, fps)")
        self.source, self.kind, self.resolution, self.clip, self.seed = source, kind, int(resolution), clip, int(seed)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key):
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        try:
            src, suffix, caption, name = self.source.get(index)
            if self.kind == "video":
                frames = decode_clip(src, self.clip, rng, name=name, suffix=suffix)
            else:
                frames = decode_image(src, rng, name=name, suffix=suffix)
        except SampleSkipped as exc:
            return Skipped(index, exc.reason, str(exc))
        return {"pixels": to_model_pixels(frames, self.resolution), "caption": caption, "index": index}
