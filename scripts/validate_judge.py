"""Validate the Shapes World judge on rendered ground-truth clips.

Renders random clips (one and two objects, all motions), judges each against its own scene's caption
and prints the agreement per attribute, plus the confusion wherever the judge disagrees; it also judges
each clip against its caption with one attribute changed and prints how often that is rejected.
Exits 1 when any attribute agrees on fewer than --min-agreement of the clips (the contract asks for 99 %).

    python scripts/validate_judge.py --clips 1000
    python scripts/validate_judge.py --clips 1000 --through-video   # judge decoded H.264 mp4 files
"""

from __future__ import annotations

import argparse
import json
import sys

from emu_video.shapes.validate import format_validation, validate_judge


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=1000, help="number of random clips to render and judge")
    ap.add_argument("--seed", type=int, default=0, help="seed for the random scenes")
    ap.add_argument("--through-video", action="store_true", help="write/read each clip as H.264 mp4 first")
    ap.add_argument("--no-negatives", action="store_true",
                    help="skip judging each clip against a caption with one attribute changed")
    ap.add_argument("--min-agreement", type=float, default=0.99, help="fail below this agreement (0..1)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON instead of a summary")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = ap.parse_args(argv)
    result = validate_judge(args.clips, seed=args.seed, through_video=args.through_video,
                            progress=not args.no_progress, negatives=not args.no_negatives)
    print(json.dumps(result, indent=2) if args.json else format_validation(result))
    worst = min(result["agreement"].values())
    return 0 if worst >= args.min_agreement else 1


if __name__ == "__main__":
    sys.exit(main())
