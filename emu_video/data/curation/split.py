"""Splitting a video at its scene cuts: each scene long enough to keep becomes its own H.264 mp4 (yuv420p,
CRF 18, the source's frame rate), written in one decoding pass of the source and renamed into place when
complete (a crash never leaves a half-written scene)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from emu_video.data.curation.probe import stream_rate


class _SceneWriter:
    def __init__(self, path: Path, rate: Fraction, width: int, height: int):
        import av

        self.path = path
        self.tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        self.container = av.open(str(self.tmp), mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = width - width % 2, height - height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "18", "preset": "medium"}
        self.stream.codec_context.time_base = 1 / rate
        self.count = 0

    def write(self, frame) -> None:
        import av

        out = frame.reformat(width=self.stream.width, height=self.stream.height, format="yuv420p")
        out.pts, out.time_base = self.count, self.stream.codec_context.time_base
        out.pict_type = av.video.frame.PictureType.NONE  # the encoder picks its own frame types
        for packet in self.stream.encode(out):
            self.container.mux(packet)
        self.count += 1

    def close(self) -> Path:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)
        return self.path


def write_scenes(source: str, ranges: list[tuple[int, int]], paths: list[Path | None]) -> list[Path]:
    """Write frames [start, end) of `source` to each non-None path of `paths` (one per range)."""
    import av

    wanted = [(a, b, p) for (a, b), p in zip(ranges, paths) if p is not None]
    written: list[Path] = []
    if not wanted:
        return written
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = Fraction(stream_rate(stream)).limit_denominator(1001)
        k, writer = 0, None
        for i, frame in enumerate(container.decode(stream)):
            while k < len(wanted) and i >= wanted[k][1]:
                if writer is not None:
                    written.append(writer.close())
                    writer = None
                k += 1
            if k == len(wanted):
                break
            start, _, path = wanted[k]
            if i < start:
                continue
            if writer is None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                writer = _SceneWriter(Path(path), rate, frame.width, frame.height)
            writer.write(frame)
        if writer is not None:
            written.append(writer.close())
    return written
