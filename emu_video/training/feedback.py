"""What a run reports: a progress bar (loss, step time, samples/s), TensorBoard scalars, a JSONL metrics
log (rank 0), optional per-rank logs, a status file, and Python logging to the console and a file."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from emu_video.training.checkpoint import write_text_atomic

log = logging.getLogger("emu_video.training")


def setup_logging(log_dir: Path | None, rank: int) -> None:
    """Console logging for the emu_video loggers (rank 0 prints info, other ranks only warnings) and a log
    file per run in `log_dir` (replacing the file of an earlier run in the same process)."""
    root = logging.getLogger("emu_video")
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    for h in list(root.handlers):
        if getattr(h, "_emu_training", False):
            root.removeHandler(h)
            h.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    handlers: list[logging.Handler] = [console]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_dir / (f"train-rank{rank}.log" if rank else "train.log")))
    for h in handlers:
        h.setFormatter(fmt)
        h._emu_training = True  # type: ignore[attr-defined]
        root.addHandler(h)


def _open_log(path: Path):
    """Append to a JSONL log, first ending a line that a killed process left unfinished."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, 2)
            unfinished = fh.read(1) != b"\n"
        if unfinished:
            with open(path, "ab") as fh:
                fh.write(b"\n")
    return open(path, "a", encoding="utf-8")


def rewind_log(path: Path, step: int) -> int:
    """Drop the records of steps after `step` from a JSONL log (and any line cut short by a killed process),
    atomically: a run that resumes from the checkpoint of `step` replays the later steps and logs them again.
    Returns how many lines were dropped."""
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] > step:
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))
    return dropped


class Feedback:
    def __init__(self, out_dir: Path, rank: int, max_steps: int, start_step: int, progress: bool, tensorboard: bool,
                 rank_logs: bool, desc: str, checkpoint: Path | None = None):
        self.rank, self.is_main = rank, rank == 0
        self.log_dir = out_dir / "logs"
        self.status_path = out_dir / "status.json"
        self.max_steps = max_steps
        self.bar = None
        self.writer = None
        self.metrics = None
        self.rank_log = None
        self.checkpoint = checkpoint  # the newest checkpoint, named in the status file
        if self.is_main:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            # Steps after the checkpoint this run starts from were logged by a run that was stopped before
            # checkpointing them; this run trains them again, so their old lines go (TensorBoard: purge_step).
            rewind_log(self.log_dir / "metrics.jsonl", start_step)
            self.metrics = _open_log(self.log_dir / "metrics.jsonl")
            if progress:
                from tqdm import tqdm

                self.bar = tqdm(total=max_steps, initial=start_step, desc=desc, dynamic_ncols=True, unit="step")
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:
                    log.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
                else:
                    self.writer = SummaryWriter(str(self.log_dir / "tensorboard"), purge_step=start_step + 1)
        if rank_logs:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            rewind_log(self.log_dir / f"rank-{rank}.jsonl", start_step)
            self.rank_log = _open_log(self.log_dir / f"rank-{rank}.jsonl")

    def step(self, step: int, scalars: dict[str, Any]) -> None:
        if not self.is_main:
            return
        self.metrics.write(json.dumps({"step": step, **scalars}) + "\n")
        self.metrics.flush()
        if self.writer is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.writer.add_scalar(f"train/{k}", v, step)
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{scalars['loss']:.4f}", step_s=f"{scalars['step_seconds']:.2f}",
                                 samples_s=f"{scalars['samples_per_second']:.1f}", skipped=scalars.get("skipped", 0),
                                 refresh=False)

    def rank_record(self, record: dict[str, Any]) -> None:
        if self.rank_log is not None:
            self.rank_log.write(json.dumps(record) + "\n")
            self.rank_log.flush()

    def message(self, text: str, warning: bool = False) -> None:
        if self.bar is not None:
            self.bar.clear()
        (log.warning if warning else log.info)(text)
        if self.bar is not None:
            self.bar.refresh()

    def status(self, state: str, step: int, message: str = "") -> None:
        """Rewrite status.json (atomically): the state, the step, the time of this update and the newest
        checkpoint. Written when a run starts, at every checkpoint and when it ends, so after a kill it
        tells the step of the checkpoint a new run will resume from."""
        if self.is_main:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            ck = self.checkpoint
            write_text_atomic(self.status_path, json.dumps({
                "state": state, "step": step, "max_steps": self.max_steps, "message": message,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "last_checkpoint": str(ck) if ck is not None else None,
            }, indent=1) + "\n")

    def checkpointed(self, step: int, path: Path | None) -> None:
        """A checkpoint of `step` was written: the status file says so (state `running`)."""
        if path is not None:
            self.checkpoint = path
        self.status("running", step, f"checkpoint at step {step}")

    def close(self) -> None:
        for h in (self.metrics, self.rank_log):
            if h is not None:
                h.close()
        if self.writer is not None:
            self.writer.close()
        if self.bar is not None:
            self.bar.close()


def read_metrics(path: Path) -> dict[int, dict[str, Any]]:
    """The last record of each step in a metrics log (a resumed run drops the lines of the steps after its
    checkpoint before it replays them, so each step has one); a line cut short by a killed process is ignored."""
    out: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[int(rec["step"])] = rec
    return out
