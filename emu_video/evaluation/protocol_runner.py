"""Generate the videos of an evaluation protocol's plan into one folder, resumably and split over processes.

The folder gets:
- one video per plan entry, named by the plan (`protocols.py`); a video is written to a hidden temporary name
  and renamed (`io.video.write_video`), so a killed run never leaves a half file under a plan name, and a rerun
  skips every video already present;
- `prompts.jsonl`, the `{"file", "prompt"}` lines `emu-video evaluate --prompts` reads;
- `protocol.json`, the protocol and every generation setting: a rerun with other settings is refused, so one
  folder never mixes videos of two configurations.

`--shard I/N` runs the entries whose plan index is I modulo N, so N processes (one per GPU) fill one folder.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emu_video.errors import UserError
from emu_video.evaluation.protocols import pending, write_prompt_file

SETTINGS_FILE = "protocol.json"
PROMPTS_FILE = "prompts.jsonl"

# (prompt, seed) -> (frames (T, H, W, 3) uint8, fps)
Generator = Callable[[str, int], tuple[np.ndarray, float]]


def parse_shard(text: str | None) -> tuple[int, int]:
    """"I/N" (0 <= I < N) -> (I, N); None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard takes I/N, e.g. 0/4 for the first of four processes; got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text}: need 0 <= I < N (the shards of 4 processes are 0/4, 1/4, 2/4, 3/4)")
    return i, n


def select(plan: list[dict], shard: tuple[int, int] = (0, 1), limit: int | None = None) -> list[dict]:
    """The first `limit` entries of the plan (all without one), then this shard's share of them."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    plan = plan[:limit] if limit else plan
    i, n = shard
    return [e for k, e in enumerate(plan) if k % n == i]


def check_folder(folder: Path, plan: list[dict]) -> None:
    """Refuse an --out that is a file, and plans whose names collide or are too long for a file system."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out must be a folder: {folder} is a file")
    seen = set()
    for entry in plan:
        name = entry["file"]
        if name in seen:
            raise UserError(f"the plan names {name} twice; every video needs its own file name")
        seen.add(name)
        if len(f".{name}.tmp".encode()) > 255:
            raise UserError(f"the file name {name[:60]}... is over 255 bytes with its temporary suffix; "
                            "shorten that prompt")


def check_settings(folder: Path, settings: dict, write: bool = True) -> None:
    """Refuse when the folder holds videos made with other settings; else (with `write`) record them in
    `protocol.json`."""
    path = folder / SETTINGS_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise UserError(f"{path} is not JSON: delete it if the folder's videos are what this run makes") from None
        keys = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if keys:
            diff = "; ".join(f"{k}: {old.get(k)!r} there, {settings.get(k)!r} now" for k in keys)
            raise UserError(f"{folder} holds videos generated with other settings ({diff}). Use another --out, or "
                            f"delete {path} to mix them knowingly")
        return
    if write:
        _atomic_write(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class RunSummary:
    planned: int  # entries of the (limited) plan, all shards
    shard_entries: int  # this shard's entries
    skipped: int  # this shard's entries already present
    generated: int
    complete: bool  # every entry of the (limited) plan is in the folder
    prompts: Path


def run_plan(plan: list[dict], folder, generate: Generator, settings: dict, shard: tuple[int, int] = (0, 1),
             limit: int | None = None, progress: bool = True, desc: str = "videos") -> RunSummary:
    """Generate this shard's missing videos of `plan` into `folder` (see the module doc)."""
    folder = Path(folder)
    check_folder(folder, plan)
    folder.mkdir(parents=True, exist_ok=True)
    check_settings(folder, settings)
    full = plan[:limit] if limit else plan
    prompts = folder / PROMPTS_FILE
    tmp = write_prompt_file(full, folder / f".{PROMPTS_FILE}.{os.getpid()}.tmp")
    os.replace(tmp, prompts)  # every shard writes the same lines; the rename keeps the file whole
    mine = select(plan, shard, limit)
    todo = pending(mine, folder)
    from emu_video.io.video import write_video

    generated = 0
    with tqdm(total=len(mine), initial=len(mine) - len(todo), desc=desc, unit="video", disable=not progress) as bar:
        for entry in todo:
            frames, fps = generate(entry["prompt"], int(entry["seed"]))
            write_video(folder / entry["file"], frames, fps)
            generated += 1
            bar.update(1)
    return RunSummary(planned=len(full), shard_entries=len(mine), skipped=len(mine) - len(todo),
                      generated=generated, complete=not pending(full, folder), prompts=prompts)


def pipeline_generator(pipeline, sampling: dict, options: dict) -> Generator:
    """A `Generator` over a `TextToVideoPipeline`: `sampling` and `options` as `emu-video generate` passes them
    (the seed comes from the plan; no per-step progress bars under the protocol's own)."""
    sampling = {k: v for k, v in sampling.items() if k not in ("seed", "progress")}

    def generate(prompt: str, seed: int):
        video = pipeline(prompt, seed=seed, progress=False, **options, **sampling)
        return video.frames, video.fps

    return generate


def evaluate_command(protocol: str, folder, real=None) -> str:
    """The `emu-video evaluate` command that scores a protocol's folder the way the papers report it."""
    folder = Path(folder)
    q = shlex.quote
    report = q(str(folder.with_name(folder.name + "-evaluation.json")))
    prompts = q(str(folder / PROMPTS_FILE))
    if protocol == "ucf101":
        return (f"emu-video evaluate --real {q(str(real)) if real else 'UCF-101'} --fake {q(str(folder))} "
                f"--metrics fvd,is --i3d i3d_pretrained_400.pt --c3d c3d_ucf101.pt --frames 16 "
                f"--device cuda --dtype bf16 --out {report}")
    if protocol == "msrvtt":
        return (f"emu-video evaluate --real {q(str(real)) if real else 'MSRVTT/videos/TestVideo'} "
                f"--fake {q(str(folder))} --metrics clipsim,fvd --clip clip-vit-base-patch32 --prompts {prompts} "
                f"--i3d i3d_pretrained_400.pt --frames 16 --device cuda --out {report}")
    if protocol == "vbench":
        return (f"emu-video evaluate --fake {q(str(folder))} --metrics clipsim,flicker,motion,motion_vectors "
                f"--clip clip-vit-base-patch32 --prompts {prompts} --out {report}")
    raise ValueError(protocol)
