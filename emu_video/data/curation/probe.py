"""What a clip is: size, frame rate, frame count and codec, read from the container with PyAV."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class ClipInfo:
    width: int
    height: int
    fps: float
    num_frames: int
    codec: str

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    def to_dict(self) -> dict:
        return {**asdict(self), "duration": round(self.duration, 4)}


def stream_rate(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0
