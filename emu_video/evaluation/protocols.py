"""Prompt lists and file layouts of the evaluation protocols.

- UCF-101 zero-shot (Make-A-Video / Align Your Latents / Emu Video): one prompt per class from its folder
  name ("ApplyEyeMakeup" -> "apply eye makeup"), videos per class in proportion to the class's share of the real
  data set (largest remainders), so the generated set has UCF-101's class distribution.
- MSR-VTT zero-shot: the 2,990 videos of the test split (`test_videodatainfo.json`), or the 1,000 of the 1k-A
  split (`MSRVTT_JSFUSION_test.csv`), one caption each (the first one listed), videos named `{video_id}.mp4`
  like the data set's own files, so the real test videos get the same names.
- VBench `custom_input`: one folder of videos named `{prompt}-{index}.mp4`.
- Every plan is a list of (file name, prompt, seed) that a generator fills; files already present are skipped,
  so an interrupted run resumes.
"""

from __future__ import annotations

import csv
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


MSRVTT_SOURCES = ("test_videodatainfo.json from the MSR-VTT release (its \"videos\" and \"sentences\" lists), or "
                  "MSRVTT_JSFUSION_test.csv (the 1k-A split: columns key,vid_key,video_id,sentence)")


def msrvtt_captions(path) -> list[tuple[str, str]]:
    """[(video_id, caption)] of the MSR-VTT test split, one caption per video: the first one of each video
    (lowest `sen_id` in the JSON; the CSV has one already), in the file's video order."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"MSR-VTT annotation file not found: {path}; expected {MSRVTT_SOURCES}")
    if path.suffix.lower() == ".csv":
        return _msrvtt_csv(path)
    if path.suffix.lower() != ".json":
        raise UserError(f"{path}: MSR-VTT annotations are a .json or .csv file; expected {MSRVTT_SOURCES}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not JSON ({exc}); expected {MSRVTT_SOURCES}") from None
    videos = data.get("videos") if isinstance(data, dict) else None
    sentences = data.get("sentences") if isinstance(data, dict) else None
    if not isinstance(videos, list) or not isinstance(sentences, list):
        raise UserError(f'{path} has no "videos" and "sentences" lists; expected {MSRVTT_SOURCES}')
    try:
        test = [v["video_id"] for v in videos if v.get("split", "test") == "test"]
        first: dict[str, tuple[int, str]] = {}
        for n, row in enumerate(sentences):
            vid, caption = row["video_id"], row["caption"]
            order = int(row.get("sen_id", n))
            if vid not in first or order < first[vid][0]:
                first[vid] = (order, caption)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise UserError(f'{path}: each video needs "video_id" (and "split"), each sentence "video_id" and '
                        f'"caption" ({type(exc).__name__}: {exc}); expected {MSRVTT_SOURCES}') from None
    if not test:
        raise UserError(f'{path} lists no video with "split": "test" (train_val_videodatainfo.json has none: '
                        "the test split is in test_videodatainfo.json)")
    missing = [v for v in test if v not in first]
    if missing:
        raise UserError(f"{path}: {len(missing)} test video(s) have no caption, e.g. {missing[0]}")
    return [(v, _caption(first[v][1], path, v)) for v in dict.fromkeys(test)]


def _msrvtt_csv(path: Path) -> list[tuple[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a readable CSV ({exc}); expected {MSRVTT_SOURCES}") from None
    if not rows or not {"video_id", "sentence"} <= set(rows[0]):
        raise UserError(f"{path} needs the columns video_id and sentence; expected {MSRVTT_SOURCES}")
    out: dict[str, str] = {}
    for row in rows:
        out.setdefault(row["video_id"], _caption(row["sentence"], path, row["video_id"]))
    return list(out.items())


def _caption(caption, path: Path, video_id: str) -> str:
    if not isinstance(caption, str) or not caption.strip():
        raise UserError(f"{path}: the caption of {video_id} is empty")
    if not isinstance(video_id, str) or not video_id or "/" in video_id:
        raise UserError(f"{path}: {video_id!r} is not a video id")
    return caption.strip()


def msrvtt_plan(captions: list[tuple[str, str]], seed: int = 0) -> list[dict]:
    """[{"file", "prompt", "seed"}]: one video per test video, named like the real one (`video7010.mp4`)."""
    return [{"file": f"{vid}.mp4", "prompt": caption, "seed": seed + n} for n, (vid, caption) in enumerate(captions)]


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


def read_prompt_lines(path) -> list[str]:
    """Prompts one per line (VBench's `prompts/all_dimension.txt`, `prompts/prompts_per_dimension/*.txt`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompt file not found: {path} (VBench's prompts are in its repository, "
                        "prompts/all_dimension.txt)")
    try:
        prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc})") from None
    if not prompts:
        raise UserError(f"prompt file {path} has no prompts (one per line)")
    return list(dict.fromkeys(prompts))
