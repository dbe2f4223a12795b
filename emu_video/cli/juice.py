"""`emu-video juice`: run a JUICE human evaluation (pairwise quality and faithfulness votes with reasons)."""

from __future__ import annotations

import argparse
import ipaddress
import math
import signal
import sys
from pathlib import Path

from emu_video.errors import UserError

DEFAULT_ROOT = "juice"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def _root_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--root", default=DEFAULT_ROOT, metavar="DIR", help=f"folder holding the studies (default: ./{DEFAULT_ROOT})"
    )
    return p


def _base_url(text: str) -> str:
    text = text.rstrip("/")
    if not (text.startswith("http://") or text.startswith("https://")):
        raise UserError(f"--base-url must start with http:// or https://, got {text!r}")
    return text


def register(subparsers) -> None:
    root = _root_parent()
    parser = subparsers.add_parser(
        "juice",
        help="human evaluation of two video models (JUICE): create a study, serve it to raters, compute results",
        description=(
            "JUICE human evaluation as in Emu Video: raters see the videos of two systems for the same prompt side "
            "by side and answer 'Which video do you prefer?' (quality) and 'Which video aligns better with the text "
            "prompt?' (faithfulness), justifying each choice with predefined reasons. Five raters per pair, "
            "left/right order randomised, the majority decides. Typical run: create -> add-raters -> serve -> results."
        ),
    )
    sub = parser.add_subparsers(dest="juice_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 1)[1])

    p = sub.add_parser(
        "create",
        parents=[root],
        help="pair the videos of two systems by prompt and bring each pair to one spec",
        description=(
            "Create ROOT/NAME/ with study.sqlite and the processed videos. DIR_A and DIR_B hold one video per prompt, "
            "named <prompt id>.mp4 (or .webm/.mkv/.mov/.avi/.gif). The prompt file is JSONL "
            '({"id": "p001", "prompt": "..."} a line), CSV (columns id,prompt) or TSV/TXT (id<TAB>prompt). Each pair is '
            "centre-cropped to a common aspect ratio, resized (bilinear) to the smaller size, centre-cropped in time "
            "to the shorter duration and resampled to the lower frame rate."
        ),
    )
    p.add_argument("--name", required=True, help="study name (letters, digits, '_', '-', '.')")
    p.add_argument("--a", required=True, metavar="DIR_A", help="videos of system A (e.g. ours)")
    p.add_argument("--b", required=True, metavar="DIR_B", help="videos of system B (the other model)")
    p.add_argument("--prompts", required=True, metavar="FILE", help="prompt file: .jsonl, .csv, .tsv or .txt")
    p.add_argument("--a-name", help="display name of system A (default: the folder's name)")
    p.add_argument("--b-name", help="display name of system B (default: the folder's name)")
    p.add_argument(
        "--aspect",
        metavar="W:H",
        help="crop every pair to this aspect ratio (the paper used 1:1); default: the more square of the two",
    )
    p.add_argument(
        "--raters-per-pair", type=int, default=5, metavar="N", help="odd number of raters per pair (default 5)"
    )
    p.add_argument("--skip-missing", action="store_true", help="leave out prompts lacking a video in either folder")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="process N pairs in parallel (default 1)")
    p.set_defaults(func=cmd_create)

    p = sub.add_parser(
        "add-raters",
        parents=[root],
        help="create rater links",
        description="Create raters and print their personal links.",
    )
    p.add_argument("name", help="study name")
    p.add_argument("--count", type=int, required=True, metavar="K", help="how many raters to add")
    p.add_argument("--prefix", default="rater", help="label prefix: PREFIX-001, PREFIX-002, ... (default: rater)")
    p.add_argument(
        "--base-url",
        default=DEFAULT_BASE_URL,
        help=f"address raters use to reach the server (default {DEFAULT_BASE_URL})",
    )
    p.set_defaults(func=cmd_add_raters)

    p = sub.add_parser(
        "raters",
        parents=[root],
        help="list raters and their progress",
        description="List raters and their progress. Links are shown only when made (the study keeps token "
        "hashes): `new-link` replaces a lost one.",
    )
    p.add_argument("name", help="study name")
    p.set_defaults(func=cmd_raters)

    p = sub.add_parser(
        "new-link",
        parents=[root],
        help="replace a rater's (or the admin's) link, e.g. when it was lost or leaked",
        description="Make a new token for a rater (by label or old token) or, with --admin, for the admin page, "
        "and print the new link. The old link stops working; the rater keeps their votes and open task.",
    )
    p.add_argument("name", help="study name")
    p.add_argument("rater", nargs="?", help="rater label (e.g. rater-003) or token")
    p.add_argument("--admin", action="store_true", help="replace the admin link instead")
    p.add_argument(
        "--base-url", default=DEFAULT_BASE_URL, help=f"address in the printed link (default {DEFAULT_BASE_URL})"
    )
    p.set_defaults(func=cmd_new_link)

    p = sub.add_parser(
        "revoke",
        parents=[root],
        help="revoke (or --restore) a rater's link",
        description="Revoke a rater by label or token: the link stops working, an open task is released; votes stay.",
    )
    p.add_argument("name", help="study name")
    p.add_argument("rater", help="rater label (e.g. rater-003) or token")
    p.add_argument("--restore", action="store_true", help="make a revoked link work again")
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser(
        "serve",
        parents=[root],
        help="run the rating web app",
        description="Serve the study over HTTP until Ctrl-C. Plain HTTP: put it behind a TLS proxy to serve beyond this machine.",
    )
    p.add_argument("name", help="study name")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument(
        "--lease-minutes",
        type=float,
        default=60.0,
        help="a task left untouched this long may go to another rater (default 60)",
    )
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "results",
        parents=[root],
        help="win rates, agreement, Fleiss' kappa and reasons; CSV, JSON and PNG",
        description=(
            "Print the results and write results.json, pairs.csv, votes.csv, reasons.csv and results.png "
            "(default: ROOT/NAME/results/). Only pairs with all their votes count."
        ),
    )
    p.add_argument("name", help="study name")
    p.add_argument("--out", metavar="DIR", help="output folder (default: ROOT/NAME/results)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.set_defaults(func=cmd_results)


def _open(args):
    from emu_video.juice.store import Study

    return Study.open(args.root, args.name)


def cmd_create(args) -> int:
    from emu_video.juice.study import create_study

    study = create_study(
        args.root,
        args.name,
        args.a,
        args.b,
        args.prompts,
        name_a=args.a_name,
        name_b=args.b_name,
        aspect=args.aspect,
        raters_per_pair=args.raters_per_pair,
        skip_missing=args.skip_missing,
        jobs=args.jobs,
        log=lambda m: print(m, flush=True),
    )
    names = study.system_names
    progress = study.progress()
    print(
        f"\nCreated study {study.name!r} in {study.folder}: {progress['pairs']} pairs, A = {names['a']}, B = {names['b']}"
    )
    print(f"Admin page (while `emu-video juice serve {study.name}` runs): {DEFAULT_BASE_URL}/admin/{study.admin_token}")
    print("(links are shown only once: the study keeps hashes of its tokens)")
    print(f"Next: emu-video juice add-raters {study.name} --count K")
    return 0


def cmd_add_raters(args) -> int:
    study = _open(args)
    base = _base_url(args.base_url)
    made = study.add_raters(args.count, args.prefix)
    for label, token in made:
        print(f"{label}\t{base}/r/{token}")
    needed = study.raters_per_pair
    total = len(study.raters())
    if total < needed:
        print(
            f"note: each pair needs {needed} different raters; this study has {total} so far",
            file=sys.stderr,
        )
    return 0


def cmd_raters(args) -> int:
    study = _open(args)
    raters = study.raters()
    if not raters:
        print(f"no raters yet: emu-video juice add-raters {study.name} --count K")
        return 0
    print("label\tvotes\topen\tstatus")
    for r in raters:
        status = "active" if r["active"] else "revoked"
        print(f"{r['label']}\t{r['done']}\t{r['open']}\t{status}")
    print(f"(links are shown only when made; `emu-video juice new-link {study.name} LABEL` replaces one)")
    return 0


def cmd_new_link(args) -> int:
    study = _open(args)
    base = _base_url(args.base_url)
    if args.admin == bool(args.rater):
        raise UserError("give a rater label (or token), or --admin")
    if args.admin:
        print(f"admin\t{base}/admin/{study.new_admin_token()}")
    else:
        label, token = study.new_rater_token(args.rater)
        print(f"{label}\t{base}/r/{token}")
    return 0


def cmd_revoke(args) -> int:
    study = _open(args)
    label = study.set_rater_active(args.rater, args.restore)
    print(f"{label}: {'restored' if args.restore else 'revoked'}")
    return 0


def cmd_serve(args) -> int:
    from emu_video.juice.server import make_server

    study = _open(args)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be 0-65535, got {args.port}")
    if not math.isfinite(args.lease_minutes) or args.lease_minutes <= 0:
        raise UserError(f"--lease-minutes must be a positive number, got {args.lease_minutes}")
    server = make_server(study, args.host, args.port, args.lease_minutes * 60.0, args.quiet)
    try:
        loopback = ipaddress.ip_address(server.server_address[0]).is_loopback
    except ValueError:
        loopback = False
    base = server.base_url
    progress = study.progress()
    print(f"Serving JUICE study {study.name!r} on {base}", flush=True)
    print(
        f"Admin page: {base}/admin/<the admin token printed by `create`; "
        f"`emu-video juice new-link {study.name} --admin` makes a new one>",
        flush=True,
    )
    print(
        f"{progress['votes']}/{progress['votes_needed']} votes so far, {len(progress['raters'])} raters "
        f"(progress: emu-video juice raters {study.name}). Ctrl-C stops.",
        flush=True,
    )
    if not loopback:
        print(
            "warning: listening beyond this machine over plain HTTP; tokens travel in clear text. "
            "Put a TLS reverse proxy in front.",
            file=sys.stderr,
            flush=True,
        )

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return 0


def cmd_results(args) -> int:
    from emu_video.juice.results import compute_results, export_results, format_results

    study = _open(args)
    res = compute_results(study)
    print(format_results(res))
    out = Path(args.out) if args.out else study.folder / "results"
    written = export_results(study, res, out, plot=not args.no_plot)
    if not res["pairs_complete"]:
        print("\nno pair has all its votes yet: win rates, agreement and the plot wait for complete pairs")
    print("\nWrote " + ", ".join(str(p) for p in written))
    return 0
