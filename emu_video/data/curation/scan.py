"""One decoding pass over a clip: its size and rate, the per-frame motion values of both methods, the first
frame (for CLIP and aesthetic scores) and small grey thumbnails of every frame (for duplicate hashes)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emu_video.data.curation.motion import frame_difference, motion_vector_magnitude
from emu_video.data.curation.probe import ClipInfo, stream_rate

THUMB = 64  # side of the grey thumbnails used for frame differences and perceptual hashes
FIRST_FRAME_SIDE = 256  # short side of the kept first frame (CLIP resizes to 224 anyway)


@dataclass
class ClipScan:
    info: ClipInfo
    vector_series: list[float] = field(default_factory=list)  # one value per frame that has motion vectors
    diff_series: list[float] = field(default_factory=list)  # one value per pair of consecutive frames
    first_frame: np.ndarray | None = None  # (H, W, 3) uint8, short side FIRST_FRAME_SIDE (or less)
    thumbnails: list[np.ndarray] = field(default_factory=list)  # (THUMB, THUMB) uint8 luma, every frame


def _first_frame_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, FIRST_FRAME_SIDE / max(1, min(width, height)))
    return max(2, round(width * scale)), max(2, round(height * scale))


def scan_clip(path: str) -> ClipScan:
    """Decode every frame of `path` once. Raises whatever PyAV raises for an unreadable file; a file whose
    stream ends early (truncated) gives the frames that decoded."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        scan = ClipScan(ClipInfo(width, height, stream_rate(stream), 0, stream.codec_context.name))
        previous = None
        for frame in container.decode(stream):
            if scan.first_frame is None:
                w, h = _first_frame_size(frame.width, frame.height)
                scan.first_frame = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
            side = frame.side_data.get("MOTION_VECTORS")
            value = motion_vector_magnitude(side.to_ndarray(), min(frame.width, frame.height)) if side else None
            if value is not None:
                scan.vector_series.append(value)
            thumb = frame.reformat(width=THUMB, height=THUMB, format="gray").to_ndarray()
            if previous is not None:
                scan.diff_series.append(frame_difference(previous, thumb))
            scan.thumbnails.append(thumb)
            previous = thumb
            scan.info.num_frames += 1
    if scan.info.num_frames == 0:
        raise ValueError("no decodable frames")
    if scan.info.fps <= 0:
        raise ValueError("unknown frame rate")
    return scan
