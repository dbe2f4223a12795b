"""Prompt lists and file layouts of the evaluation protocols.

- UCF-101 zero-shot (Make-A-Video / Align Your Latents / Emu Video): one prompt per class from its folder
  name ("ApplyEyeMakeup" -> "apply eye makeup"), videos per class in proportion to the class's share of the real
  data set (largest remainders), so the generated set has UCF-101's class distribution.
- VBench `custom_input`: one folder of videos named `{prompt}-{index}.mp4`.
- Every plan is a list of (file name, prompt, seed) that a generator fills; files already present are skipped,
  so an interrupted run resumes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from emu_video.errors import UserError
from emu_video.io.video import VIDEO_SUFFIXES


def class_prompt(folder_name: str) -> str:
    """UCF-101 class folder name to prompt: split CamelCase and digits, lower-case ("YoYo" -> "yo yo")."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\b|\d)|[A-Z]?[a-z]+|\d+", folder_name)
    if not words:
        raise UserError(f"cannot make a prompt from class folder {folder_name!r}")
    return " ".join(w.lower() for w in words)


def ucf101_class_counts(root) -> dict[str, int]:
    """Videos per class folder of a UCF-101 tree (`root/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`, ...)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"UCF-101 folder not found: {root} (unpack UCF101.rar from crcv.ucf.edu/data/UCF101.php)")
    counts = {d.name: sum(1 for f in d.iterdir() if f.suffix.lower() in VIDEO_SUFFIXES)
              for d in sorted(root.iterdir()) if d.is_dir()}
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        raise UserError(f"{root} has no class folders with videos (expected root/ClassName/*.avi)")
    return counts


def proportional_allocation(counts: dict[str, int], total: int) -> dict[str, int]:
    """Split `total` samples over classes in proportion to `counts` (largest remainders; ties by name)."""
    n = sum(counts.values())
    exact = {k: total * v / n for k, v in counts.items()}
    out = {k: int(e) for k, e in exact.items()}
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[: total - sum(out.values())]:
        out[k] += 1
    return out


def ucf101_plan(counts: dict[str, int], total: int = 10_000, seed: int = 0) -> list[dict]:
    """[{"file", "prompt", "class", "seed"}] for `total` videos with UCF-101's class distribution."""
    plan = []
    for cls, k in proportional_allocation(counts, total).items():
        for j in range(k):
            plan.append({"file": f"{cls}_{j:04d}.mp4", "prompt": class_prompt(cls), "class": cls,
                         "seed": seed + len(plan)})
    return plan


def vbench_file_name(prompt: str, index: int) -> str:
    """VBench custom_input naming: `{prompt}-{index}.mp4` (a '/' in the prompt would make a folder: refused)."""
    if "/" in prompt or not prompt.strip():
        raise UserError(f"VBench file names are the prompt itself; this prompt cannot be one: {prompt!r}")
    return f"{prompt}-{index}.mp4"


def vbench_plan(prompts: list[str], samples_per_prompt: int = 5, seed: int = 0) -> list[dict]:
    return [{"file": vbench_file_name(p, i), "prompt": p, "seed": seed + n * samples_per_prompt + i}
            for n, p in enumerate(prompts) for i in range(samples_per_prompt)]


def pending(plan: list[dict], folder) -> list[dict]:
    """The plan entries whose video is not in `folder` yet (resume)."""
    folder = Path(folder)
    return [e for e in plan if not (folder / e["file"]).exists()]


def write_prompt_file(plan: list[dict], path) -> Path:
    """The `{"file", "prompt"}` JSON lines `emu-video evaluate --prompts` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"file": e["file"], "prompt": e["prompt"]}) + "\n" for e in plan),
                    encoding="utf-8")
    return path
