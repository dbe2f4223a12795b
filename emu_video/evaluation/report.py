"""`emu-video evaluate`: every requested metric over a real folder and one or more generated folders.

Networks are loaded once, up front (a missing weight file fails before any long work); per-video metrics are
kept in the report next to the folder means, so a number can be traced to its videos.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emu_video.errors import UserError
from emu_video.evaluation import clip_metrics, weightfree
from emu_video.evaluation.prompts import PromptEntry, load_prompts

METRICS = {
    "fvd": "Fréchet Video Distance on I3D Kinetics-400 features (needs --real and --i3d)",
    "cdfvd": "content-debiased FVD on VideoMAE-v2 SSv2 features, as cd-fvd (needs --real and --videomae)",
    "is": "Inception Score with the UCF-101 C3D, 10 splits (needs --c3d)",
    "clipsim": "mean CLIP frame-to-prompt cosine, x1 (needs --clip and --prompts)",
    "i2v": "frame consistency, image similarity, text consistency x100 (needs --clip, --prompts with images)",
    "flicker": "mean |temporal second difference| of luminance, grey levels (no weights)",
    "motion": "mean |frame difference| of luminance, grey levels (no weights)",
    "motion_vectors": "mean H.264 motion-vector length, percent of width (no weights)",
    "judge": "Shapes World judge: faithful rate and per-attribute accuracy (needs --prompts)",
}
WEIGHT_FREE = ("flicker", "motion", "motion_vectors")


def parse_metrics(text: str) -> list[str]:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise UserError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


@dataclass
class EvalSettings:
    metrics: list[str]
    i3d: Path | None = None
    videomae: Path | None = None
    c3d: Path | None = None
    clip: Path | None = None
    prompts: Path | None = None
    frames: int = 16
    stride: int = 1
    batch_size: int = 16
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    limit: int | None = None
    fvd_size: int = 224
    is_splits: int = 10
    progress: bool = True
    cache: Path | None = None  # folder of cached I3D features (feature_cache.py); None: always compute
    nets: dict = field(default_factory=dict)
    cache_log: dict = field(default_factory=dict)  # "network folder" -> {"network", "folder", "file", "status"}


def _load_networks(s: EvalSettings, has_real: bool) -> None:
    from emu_video.evaluation import detectors

    if "fvd" in s.metrics:
        if not has_real:
            raise UserError("fvd compares with real videos: pass --real DIR")
        s.nets["i3d"] = detectors.load_i3d(s.i3d, s.device, s.dtype)
    if "cdfvd" in s.metrics:
        if not has_real:
            raise UserError("cdfvd compares with real videos: pass --real DIR")
        from emu_video.evaluation.videomae import load_videomae

        s.nets["videomae"] = load_videomae(s.videomae, s.device, s.dtype)
    if "is" in s.metrics:
        s.nets["c3d"] = detectors.load_c3d(s.c3d, s.device, s.dtype)
    if {"clipsim", "i2v"} & set(s.metrics):
        if s.clip is None:
            raise UserError("clipsim/i2v need a CLIP folder: pass --clip DIR (e.g. openai/clip-vit-base-patch32)")
        from emu_video.evaluation.clip import load_clip

        s.nets["clip"] = load_clip(s.clip, s.device, s.dtype)
    if {"clipsim", "i2v", "judge"} & set(s.metrics) and s.prompts is None:
        raise UserError("clipsim, i2v and judge score videos against prompts: pass --prompts FILE.jsonl")


def _per_video(path: Path, s: EvalSettings, entry: PromptEntry | None) -> dict:
    from emu_video.io.video import read_image, read_video

    video = read_video(path)
    frames, out = video.frames, {}
    if "flicker" in s.metrics and frames.shape[0] >= 3:
        out["flicker"] = weightfree.flicker(frames)
    if "motion" in s.metrics and frames.shape[0] >= 2:
        out["motion"] = weightfree.motion(frames)
    if "motion_vectors" in s.metrics:
        out["motion_vectors"] = weightfree.motion_vectors(path)
    if entry is not None:
        if {"clipsim", "i2v"} & set(s.metrics):
            image = read_image(entry.image) if entry.image is not None and "i2v" in s.metrics else None
            clip = clip_metrics.video_scores(s.nets["clip"], frames, entry.prompt, image)
            keep = (["clipsim"] if "clipsim" in s.metrics else []) + (
                ["frame_consistency", "text_consistency", "image_similarity"] if "i2v" in s.metrics else [])
            out.update({k: v for k, v in clip.items() if k in keep})
        if "judge" in s.metrics:
            from emu_video.shapes.judge import judge

            out["judge"] = judge(frames, entry.prompt, fps=video.fps)
    return out


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def evaluate_folder(folder: Path, s: EvalSettings, prompts: dict | None, is_real: bool) -> tuple[dict, dict]:
    """(scores, extras) for one folder; extras carries the I3D feature statistics for FVD."""
    from emu_video.evaluation.videos import list_videos

    paths = list_videos(folder, s.limit)
    scores: dict = {"num_videos": len(paths)}
    need_prompts = bool({"clipsim", "i2v", "judge"} & set(s.metrics))
    # A real folder gets prompt metrics only when the prompt file names all its videos.
    use_prompts = need_prompts and prompts is not None and (not is_real or all(p.name in prompts for p in paths))
    per_video: dict[str, dict] = {}
    if set(s.metrics) & {*WEIGHT_FREE, "clipsim", "i2v", "judge"}:
        from emu_video.evaluation.prompts import prompt_for

        for p in tqdm(paths, desc=f"{folder.name}: per-video metrics", unit="video", disable=not s.progress):
            per_video[p.relative_to(folder).as_posix()] = _per_video(p, s, prompt_for(prompts, p) if use_prompts else None)
        for key in ("flicker", "motion", "motion_vectors", "clipsim", "frame_consistency", "image_similarity",
                    "text_consistency"):
            if any(key in v for v in per_video.values()):
                scores[key] = _mean(v.get(key) for v in per_video.values())
        if use_prompts and "judge" in s.metrics:
            from emu_video.shapes.evaluate import summarize_reports

            summary = summarize_reports([v.pop("judge") for v in per_video.values()])
            scores.update({f"judge_{k}": v for k, v in summary.items() if k != "num_clips"})
    extras = {}
    for metric, net in (("fvd", "i3d"), ("cdfvd", "videomae")):
        if metric in s.metrics:
            from emu_video.evaluation.frechet import FeatureStats

            extras[net] = FeatureStats()
            extras[net].add(_features(folder, paths, s, net))
    if "is" in s.metrics and not is_real:
        from emu_video.evaluation.detectors import c3d_preprocess
        from emu_video.evaluation.features import extract
        from emu_video.evaluation.inception_score import inception_score

        probs = extract(paths, s.nets["c3d"], c3d_preprocess, 16, s.batch_size, s.stride,
                        desc=f"{folder.name}: C3D", progress=s.progress)
        scores["is"], scores["is_std"] = inception_score(probs, splits=s.is_splits)
    scores["per_video"] = per_video
    return scores, extras


def _features(folder: Path, paths: list[Path], s: EvalSettings, name: str) -> np.ndarray:
    """The `name` network's ("i3d", "videomae") features of `paths`, from the feature cache when its key (files,
    network file, settings) is the same."""
    from emu_video.evaluation.features import extract

    net = s.nets[name]
    if name == "i3d":
        from emu_video.evaluation.detectors import i3d_preprocess

        size, prepare, label = s.fvd_size, i3d_preprocess, "I3D"
    else:
        from emu_video.evaluation.videomae import videomae_preprocess

        size, prepare, label = net.input_size, videomae_preprocess, "VideoMAE"

    def compute():
        return extract(paths, net, functools.partial(prepare, size=size), s.frames, s.batch_size, s.stride,
                       desc=f"{folder.name}: {label}", progress=s.progress)

    if s.cache is None:
        return compute()
    from emu_video.evaluation.feature_cache import FeatureCache, file_sha256, make_key

    digest = f"{name}_sha256"
    if digest not in s.nets:
        if name == "i3d":
            s.nets[digest] = file_sha256(s.i3d)
        else:
            from emu_video.evaluation.videomae import weights_digest

            s.nets[digest] = weights_digest(s.videomae)
    cache = FeatureCache(s.cache)
    key = make_key(folder, paths, {"network": name, "weights_sha256": s.nets[digest], "format": net.kind,
                                   "frames": s.frames, "stride": s.stride, "size": size,
                                   "dtype": str(s.dtype).removeprefix("torch.")})
    feats = cache.load(folder, name, key)
    status = "reused"
    if feats is None:
        feats, status = compute(), "computed"
        cache.save(folder, name, key, feats)
    s.cache_log[f"{name} {folder}"] = {"network": name, "folder": str(folder), "status": status,
                                       "file": str(cache.path_for(folder, name))}
    return feats


def evaluate(real: Path | None, fakes: list[Path], s: EvalSettings) -> dict:
    """The full report: settings, then one entry per folder (the real one first, as "real")."""
    if not fakes:
        raise UserError("pass at least one --fake DIR")
    names = [f.name or str(f) for f in fakes]
    if len(set(names)) != len(names):
        names = [str(f) for f in fakes]
    _load_networks(s, real is not None)
    prompts = load_prompts(s.prompts) if s.prompts is not None else None
    report: dict = {
        "settings": {
            "metrics": s.metrics, "frames": s.frames, "stride": s.stride, "fvd_size": s.fvd_size,
            "is_splits": s.is_splits, "device": str(s.device), "dtype": str(s.dtype).removeprefix("torch."),
            "i3d": str(s.i3d) if s.i3d else None, "i3d_format": getattr(s.nets.get("i3d"), "kind", None),
            "videomae": str(s.videomae) if s.videomae else None,
            "c3d": str(s.c3d) if s.c3d else None, "clip": str(s.clip) if s.clip else None,
            "prompts": str(s.prompts) if s.prompts else None, "real": str(real) if real else None,
            "fake": [str(f) for f in fakes],
        },
        "folders": {},
    }
    real_extras = None
    if real is not None:
        report["folders"]["real"], real_extras = evaluate_folder(Path(real), s, prompts, is_real=True)
    for name, folder in zip(names, fakes):
        scores, extras = evaluate_folder(Path(folder), s, prompts, is_real=False)
        if "fvd" in s.metrics:
            from emu_video.evaluation.frechet import frechet_from_stats

            scores["fvd"] = frechet_from_stats(real_extras["i3d"], extras["i3d"])
        if "cdfvd" in s.metrics:
            from emu_video.evaluation.frechet import frechet_from_stats

            scores["cdfvd"] = frechet_from_stats(real_extras["videomae"], extras["videomae"])
        report["folders"][name] = scores
    if s.cache_log:
        report["feature_cache"] = s.cache_log
    return report


def score_columns(report: dict) -> list[str]:
    cols: list[str] = []
    for scores in report["folders"].values():
        cols += [k for k in scores if k not in ("per_video", "num_videos") and k not in cols]
    return cols


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_table(report: dict) -> str:
    cols = ["num_videos", *score_columns(report)]
    rows = [["folder", *cols]] + [[name, *(_fmt(s.get(c)) for c in cols)] for name, s in report["folders"].items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols) + 1)]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths)))
                     for r in rows)


def plot_report(report: dict, path: Path) -> Path:
    """One bar chart per metric, one bar per folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in score_columns(report) if not c.endswith("_std")]
    if not cols:
        raise UserError("nothing to plot: no metric produced a number")
    names = list(report["folders"])
    ncol = min(4, len(cols))
    nrow = math.ceil(len(cols) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.8 * nrow), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        values = [report["folders"][n].get(col) for n in names]
        ax.bar(range(len(names)), [v if v is not None else 0 for v in values], color="#4477aa")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(col, fontsize=9)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
