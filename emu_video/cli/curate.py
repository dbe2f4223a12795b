"""`emu-video curate`: select a high-quality fine-tuning set from a manifest, as the paper selects its HQ set."""

from __future__ import annotations

import os
import sys

from emu_video.errors import UserError

CURATE_HELP = """\
Select the clips of a manifest worth fine-tuning on, as the paper selects its high-quality set: scene cuts
(PySceneDetect), the motion score of the H.264 motion vectors (sliding-window minimum; frame differences for
streams without vectors), CLIP score and aesthetic score of the first frame (from local weights), minimum
length / size / frame rate, and near-duplicates (perceptual hashes). Writes
  OUT/manifest.jsonl   the kept clips, for training:  emu-video train --config video_hq data.manifest=OUT/manifest.jsonl
  OUT/report.json      every clip's scores and why it was kept or dropped; unreadable files
  OUT/plots/*.png      a histogram of each score with its threshold
  OUT/clips/           the scenes of videos split at their cuts
Rerun the same command to resume: measured files are skipped (OUT/scores.jsonl); changing only thresholds
re-decides without measuring again.

Motion units: mean motion-vector length in pixels, as if the frame's short side were 512 px (the paper's
fine-tuning size), per coded frame; the clip's score is the smallest mean over 11-frame windows. The paper's
threshold 0.5 is read in these units. Without vectors, frame differences in grey levels (--min-motion-diff)."""


def _default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def register(sub) -> None:
    import argparse

    from emu_video.data.curation.duplicates import DEFAULT_MAX_DISTANCE
    from emu_video.data.curation.filters import Thresholds
    from emu_video.data.curation.measure import CUT_MODES
    from emu_video.data.curation.motion import DEFAULT_WINDOW
    from emu_video.data.curation.scenes import DEFAULT_THRESHOLD

    t = Thresholds()
    p = sub.add_parser("curate", help="select a high-quality fine-tuning set from a manifest (paper's filters)",
                       description=CURATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", metavar="MANIFEST", help="input manifest (.jsonl or .csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (manifest, report, plots, scenes)")
    p.add_argument("--workers", type=int, default=_default_workers(),
                   help="decoding worker processes (0: in this process; default %(default)s)")
    p.add_argument("--cuts", choices=CUT_MODES, default="split",
                   help="videos with scene cuts: split them into one clip per scene (default), drop them, "
                        "or do not look for cuts")
    p.add_argument("--cut-threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="PySceneDetect content threshold (default %(default)s; lower finds more cuts)")
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                   help="frames per motion window; the score is the smallest window mean (default %(default)s)")
    p.add_argument("--clip", metavar="DIR", help="CLIP model folder (transformers; ViT-L/14 for the aesthetic "
                                                 "score); without it the CLIP filter is off")
    p.add_argument("--aesthetic", metavar="FILE", help="LAION aesthetic predictor weights "
                                                       "(sac+logos+ava1-l14-linearMSE.pth or .safetensors)")
    p.add_argument("--device", default="cpu", help="device for CLIP and the aesthetic predictor (default cpu)")
    p.add_argument("--min-clip-score", type=float, default=None,
                   help=f"keep clips with CLIP(first frame, caption) above this (default {t.min_clip_score})")
    p.add_argument("--min-aesthetic", type=float, default=None,
                   help=f"keep clips with an aesthetic score above this (default {t.min_aesthetic})")
    p.add_argument("--min-motion", type=float, default=t.min_motion,
                   help="keep clips whose motion-vector score is above this (default %(default)s)")
    p.add_argument("--min-motion-diff", type=float, default=t.min_motion_diff,
                   help="the same for clips scored by frame differences, grey levels (default %(default)s)")
    p.add_argument("--min-seconds", type=float, default=t.min_seconds, help="minimum length (default %(default)s)")
    p.add_argument("--min-side", type=int, default=t.min_side,
                   help="minimum shorter side in pixels (default %(default)s)")
    p.add_argument("--min-fps", type=float, default=t.min_fps, help="minimum frame rate (default %(default)s)")
    p.add_argument("--max-duplicate-distance", type=float, default=DEFAULT_MAX_DISTANCE,
                   help="clips whose frame hashes differ by at most this many bits (of 64) are duplicates "
                        "(default %(default)s; -1 keeps duplicates)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_curate)


def _check_installed(scenes: bool) -> None:
    import importlib.util

    needed = ["imagehash"] + (["scenedetect", "cv2"] if scenes else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"curate needs {', '.join(missing)}: pip install 'emu-video[curate]'"
                        + (" (or --cuts off to skip scene detection)" if "scenedetect" in missing else ""))


def run_curate(args) -> int:
    from emu_video.data.curation.filters import Thresholds
    from emu_video.data.curation.measure import MeasureSettings
    from emu_video.data.curation.pipeline import curate
    from emu_video.data.curation.quality import load_quality_models

    if args.workers < 0:
        raise UserError(f"--workers must be >= 0, got {args.workers}")
    if args.window < 1:
        raise UserError(f"--window must be >= 1, got {args.window}")
    if args.min_clip_score is not None and not args.clip:
        raise UserError("--min-clip-score needs a CLIP model: give --clip DIR")
    if args.min_aesthetic is not None and not args.aesthetic:
        raise UserError("--min-aesthetic needs the predictor's weights: give --aesthetic FILE (and --clip DIR)")
    _check_installed(args.cuts != "off")
    defaults = Thresholds()
    thresholds = Thresholds(
        min_clip_score=defaults.min_clip_score if args.min_clip_score is None else args.min_clip_score,
        min_aesthetic=defaults.min_aesthetic if args.min_aesthetic is None else args.min_aesthetic,
        min_motion=args.min_motion, min_motion_diff=args.min_motion_diff, min_seconds=args.min_seconds,
        min_side=args.min_side, min_fps=args.min_fps,
    )
    models = load_quality_models(args.clip, args.aesthetic, args.device)
    for note in models.notes:
        print(note, file=sys.stderr)
    settings = MeasureSettings(cuts=args.cuts, cut_threshold=args.cut_threshold, window=args.window,
                               min_seconds=args.min_seconds)
    quality_ids = {"clip": os.path.abspath(args.clip) if args.clip else None,
                   "aesthetic": os.path.abspath(args.aesthetic) if args.aesthetic else None}
    result = curate(args.manifest, args.out, thresholds, settings, models, quality_ids, args.workers,
                    args.max_duplicate_distance, progress=not args.no_progress)
    print(f"kept {result.kept} of {result.clips} clips from {result.rows} files "
          f"({result.rows - result.measured} already measured); {len(result.unreadable)} unreadable")
    for bad in result.unreadable[:5]:
        print(f"  unreadable: {bad['path']}: {bad['error']}")
    if len(result.unreadable) > 5:
        print(f"  ... and {len(result.unreadable) - 5} more (see {result.report})")
    print(f"wrote {result.manifest}, {result.report} and {len(result.plots)} histogram(s) in {result.report.parent / 'plots'}")
    return 0
