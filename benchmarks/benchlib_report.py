"""Benchmark bookkeeping: shapes, time budget, result rows, tables."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GiB = float(2**30)


# Shapes -------------------------------------------------------------------------------------------------
@dataclass
class Shapes:
    """What every section runs; `--cpu-smoke` swaps in tiny ones."""

    ours_small: str = "sd15"  # our configuration compared with the peer
    ours_paper: str = "paper"
    peer: str = "sd15"  # diffusers UNetMotionModel: SD 1.5 + default MotionAdapter
    guidance: int = 3  # batched guidance passes
    frames: int = 16
    latent: int = 64
    peer_ref_batch: int = 2  # the reference shape for the peer
    paper_frames: tuple[int, ...] = (8, 16)
    interp_frames: int = 37
    text_len: int = 77
    train_batch: int = 8
    train_frames: int = 16
    train_latent: int = 32
    paper_train_batch: int = 8
    paper_train_frames: int = 8
    e2e_frames: int = 16  # -> 65 after interpolation
    e2e_size: int = 512
    e2e_steps: int = 50
    e2e_long_steps: int = 250
    matmul: int = 8192


def smoke_shapes() -> Shapes:
    return Shapes(
        ours_small="tiny", ours_paper="tiny", peer="tiny", guidance=3, frames=4, latent=16, peer_ref_batch=2,
        paper_frames=(2, 4), interp_frames=9, text_len=7, train_batch=2, train_frames=4, train_latent=16,
        paper_train_batch=2, paper_train_frames=2, e2e_frames=16, e2e_size=32, e2e_steps=2, e2e_long_steps=3,
        matmul=256,
    )


# Bookkeeping --------------------------------------------------------------------------------------------
class Budget:
    def __init__(self, seconds: float):
        self.start = time.perf_counter()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


class Report:
    def __init__(self, path: Path | None, meta: dict[str, Any]):
        self.path = path
        self.meta = meta
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.notes: list[str] = []

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        self.rows.append(row)
        print(_row_line(row), flush=True)
        self.save()
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)
        self.save()

    def find(self, key: str) -> dict[str, Any] | None:
        for row in self.rows:
            if row.get("key") == key and not row.get("error") and not row.get("skipped"):
                return row
        return None

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "rows": self.rows, "summary": self.summary, "notes": self.notes}

    def save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
            os.replace(tmp, self.path)


def _fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _fmt_tflops(v):
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 10 else f"{v:.3g}"


def _row_line(row: dict[str, Any]) -> str:
    if row.get("skipped"):
        return f"[{row['section']}] {row['name']}: skipped ({row['skipped']})"
    if row.get("error"):
        return f"[{row['section']}] {row['name']}: ERROR {row['error']}"
    parts = [f"[{row['section']}] {row['name']} ({row.get('shape', '')})"]
    if row.get("ms") is not None:
        parts.append(f"{row['ms']:.1f} ms")
    if row.get("tflops") is not None:
        parts.append(f"{_fmt_tflops(row['tflops'])} TFLOP/s")
    if row.get("wall_s") is not None:
        parts.append(f"{row['wall_s']:.1f} s")
    if row.get("peak_reserved_gib") is not None:
        parts.append(f"peak {row['peak_alloc_gib']:.1f}/{row['peak_reserved_gib']:.1f} GiB")
    if row.get("notes"):
        parts.append(row["notes"])
    return "  ".join(parts)


def markdown_table(report: Report) -> str:
    head = (
        "| section | measurement | shape | ms / step | TFLOP / step | TFLOP/s | peak alloc GiB | peak reserved GiB | notes |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---|\n"
    )
    lines = []
    for r in report.rows:
        if r.get("skipped"):
            note = f"skipped: {r['skipped']}"
        elif r.get("error"):
            note = f"error: {r['error'][:120]}"
        else:
            note = r.get("notes", "")
        ms = r.get("ms")
        if ms is None and r.get("wall_s") is not None:
            ms_txt = f"{r['wall_s']:.1f} s total"
        else:
            ms_txt = _fmt(ms)
        tflop = r.get("flops") / 1e12 if r.get("flops") else None
        lines.append(
            f"| {r['section']} | {r['name']} | {r.get('shape', '')} | {ms_txt} | {_fmt(tflop, 2)} | "
            f"{_fmt_tflops(r.get('tflops'))} | {_fmt(r.get('peak_alloc_gib'))} | {_fmt(r.get('peak_reserved_gib'))} | {note} |"
        )
    return head + "\n".join(lines) + "\n"
