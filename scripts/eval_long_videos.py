"""Measure long videos (chained extensions) and keyframe videos of a model folder with the Shapes World judge.

For every evaluation prompt (fixed seeds) and every anchor setting, one chain of the largest segment count is
made: segment 1 animates the prompt's rendered first frame (or, with --first generated, the text-to-image
model's), later segments are extensions whose prompts alternate the motions (left, right, left, ...). Each
requested count of segments (a prefix of the chain) is interpolated and judged per segment: object kept in its
colour and shape, colour drift from segment 1, motion as each segment's prompt says, flicker at the seams. The
keyframes check renders a clip's first and last frame, animates between them (animate --last) and judges
that the object travels from the first position to the last.

Rows go to a JSONL file (one per prompt, anchor, weights and segment count); a rerun skips the rows it has,
so an interrupted run resumes, and shards (--shard I/N) can run side by side into their own files. The
summary (markdown) groups the rows of every file given by --out / --summarize.

    python scripts/eval_long_videos.py --device cuda --out runs/long_videos/results.jsonl
    python scripts/eval_long_videos.py --summarize runs/long_videos/results*.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from emu_video.errors import UserError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--label", default=None, help="the model's name in the table (default: the folder's name)")
    p.add_argument("--weights", default="trained,fallback",
                   help="comma list: trained = the folder's extension / keyframes weights, fallback = F's (as before "
                        "training); a folder without trained weights measures F once (default trained,fallback)")
    p.add_argument("--anchor", default="first,none", help="comma list of drift mitigations (default first,none)")
    p.add_argument("--segments", default="1,2,4,8", help="comma list of segment counts (default 1,2,4,8)")
    p.add_argument("--sets", default="eval-seen,eval-two", help="evaluation sets (default eval-seen,eval-two)")
    p.add_argument("--limit", type=int, default=24, help="first K prompts of each set (default 24: 48 prompts)")
    p.add_argument("--keyframes", type=int, default=40,
                   help="prompts for the keyframes check: single objects moving left/right/up/down from eval-seen "
                        "and eval-heldout (default 40; 0: no keyframes check)")
    p.add_argument("--first", choices=("rendered", "generated"), default="rendered",
                   help="segment 1 animates the prompt's rendered first frame (default) or a generated one")
    p.add_argument("--past", type=int, default=4, help="past frames of every extension (default 4, as trained)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    p.add_argument("--interp-steps", type=int, default=None, help="interpolation steps (default: the model's)")
    p.add_argument("--no-interpolate", action="store_true", help="judge the 4 fps videos")
    p.add_argument("--device", default="cpu")
    p.add_argument("--shard", default="0/1", help="I/N: this process takes prompts I, I+N, ... (default 0/1)")
    p.add_argument("--out", default="runs/long_videos/results.jsonl", help="JSONL rows (appended; resumable)")
    p.add_argument("--table", default=None, help="also write the summary table (markdown) to this file")
    p.add_argument("--save-videos", metavar="DIR", default=None, help="write every judged video (mp4) here")
    p.add_argument("--summarize", nargs="*", metavar="JSONL", default=None,
                   help="only print the summary of these row files (no generation)")
    return p.parse_args(argv)


def _list(text: str, kind=str) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard takes I/N, e.g. 0/2; got {text!r}") from None
    if not 0 <= i < n:
        raise UserError(f"--shard {text}: I must be in 0..N-1")
    return i, n


def read_rows(paths) -> list[dict]:
    """The rows of every file, one per key (a row measured twice counts once: the later one)."""
    rows = {}
    for path in paths:
        path = Path(path)
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    rows[_key(row)] = row
    return list(rows.values())


def _key(row: dict) -> tuple:
    return (row["check"], row["model"], row["weights"], row.get("anchor"), row.get("segments"), row["set"],
            row["seed"], row["prompt"])


def long_items(sets: list[str], limit: int) -> list[tuple[str, object]]:
    from emu_video.shapes import load_eval_set

    return [(name, it) for name in sets for it in list(load_eval_set(name))[:limit]]


def keyframe_items(count: int) -> list[tuple[str, object]]:
    from emu_video.shapes import load_eval_set, parse_prompt
    from emu_video.shapes.long_eval import DIRECTIONAL

    items = [(name, it) for name in ("eval-seen", "eval-heldout") for it in load_eval_set(name)
             if len(parse_prompt(it.prompt).objects) == 1 and parse_prompt(it.prompt).objects[0].motion in DIRECTIONAL]
    return items[:count]


def load(args, weights: str):
    from emu_video.pipelines import EmuVideoComponents

    c = EmuVideoComponents.from_pretrained(args.model, device=args.device)
    if weights == "fallback":
        for name in ("extension", "keyframes"):
            c.forget_layout(name)
    return c


def run_long(args, c, label: str, items, done: set, out, video_dir: Path | None) -> None:
    from emu_video.pipelines import LongVideoPipeline
    from emu_video.shapes.grammar import scene_from_prompt
    from emu_video.shapes.long_eval import judge_long_video, segment_prompts
    from emu_video.shapes.render import render_image

    pipe = LongVideoPipeline(c)
    counts = sorted(set(_list(args.segments, int)))
    weights = c.weights_for("extension")
    jobs = [(name, it, anchor) for name, it in items for anchor in _list(args.anchor)]
    for name, it, anchor in tqdm(jobs, desc=f"long videos ({label}, {weights} weights)", dynamic_ncols=True):
        base = {"check": "long", "model": label, "weights": weights, "anchor": anchor, "set": name, "seed": it.seed,
                "prompt": it.prompt}
        todo = [n for n in counts if _key({**base, "segments": n}) not in done]
        if not todo:
            continue
        prompts = segment_prompts(it.prompt, max(todo))
        first = render_image(scene_from_prompt(it.prompt, seed=it.seed)) if args.first == "rendered" else None
        t0 = time.perf_counter()
        chain = pipe.chain(prompts, first_image=first, num_past=args.past, anchor=anchor, seed=it.seed,
                           num_inference_steps=args.steps, progress=False)
        for n in todo:
            video = pipe.finish(chain, interpolate=not args.no_interpolate, interpolation_steps=args.interp_steps,
                                segments=n)
            scores = judge_long_video(video.frames, video.fps, video.info["segments"])
            row = {**base, "segments": n, "frames": len(video.frames), "fps": video.fps,
                   "seconds": round(time.perf_counter() - t0, 2), **scores}
            out.write(json.dumps(row) + "\n")
            out.flush()
            if video_dir is not None:
                from emu_video.io.video import write_video

                write_video(video_dir / f"{label}-{weights}-{anchor}-{name}-{it.seed}-{n}seg.mp4", video.frames,
                            video.fps)


def run_keyframes(args, c, label: str, items, done: set, out, video_dir: Path | None) -> None:
    from emu_video.pipelines import ImageToVideoPipeline
    from emu_video.shapes.grammar import scene_from_prompt
    from emu_video.shapes.long_eval import travel_check
    from emu_video.shapes.render import render

    pipe = ImageToVideoPipeline(c)
    weights = c.weights_for("keyframes")
    num_frames = int(c.defaults["num_frames"])
    step = round(16 / float(c.defaults["fps"]))  # 16 fps timeline frames per model frame
    for name, it in tqdm(items, desc=f"keyframes ({label}, {weights} weights)", dynamic_ncols=True):
        base = {"check": "keyframes", "model": label, "weights": weights, "anchor": None, "segments": None,
                "set": name, "seed": it.seed, "prompt": it.prompt}
        if _key(base) in done:
            continue
        scene = scene_from_prompt(it.prompt, seed=it.seed)
        last_frame = step * (num_frames - 1)
        first, last = render(scene, frames=[0, last_frame])
        obj = scene.objects[0]
        start, end = obj.centres()[0], obj.centres()[last_frame]
        video = pipe(first, it.prompt, last_image=last, seed=it.seed, num_inference_steps=args.steps, progress=False)
        row = {**base, "frames": len(video.frames), "fps": video.fps,
               **travel_check(video.frames, it.prompt, start, end, video.fps)}
        out.write(json.dumps(row) + "\n")
        out.flush()
        if video_dir is not None:
            from emu_video.io.video import write_video

            write_video(video_dir / f"{label}-{weights}-keyframes-{name}-{it.seed}.mp4", video.frames, video.fps)


def main(argv=None) -> int:
    from emu_video.shapes.long_eval import summary_table

    args = parse_args(argv)
    if args.summarize is not None:
        print(summary_table(read_rows(args.summarize or [args.out])), end="")
        return 0
    shard, shards = _shard(args.shard)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = {_key(r) for r in read_rows([out_path])}
    label = args.label or (Path(args.model).name if args.model else "default_model")
    video_dir = Path(args.save_videos) if args.save_videos else None
    if video_dir is not None:
        video_dir.mkdir(parents=True, exist_ok=True)
    long = long_items(_list(args.sets), args.limit)[shard::shards]
    keys = keyframe_items(args.keyframes)[shard::shards]
    measured = set()
    with out_path.open("a") as out:
        for weights in _list(args.weights):
            if weights not in ("trained", "fallback"):
                raise UserError(f"--weights takes trained and/or fallback, not {weights!r}")
            c = load(args, weights)
            which = (c.weights_for("extension"), c.weights_for("keyframes"))
            if which in measured:  # a folder without trained weights: 'trained' is F's too
                continue
            measured.add(which)
            run_long(args, c, label, long, done, out, video_dir)
            if keys:
                run_keyframes(args, c, label, keys, done, out, video_dir)
    table = summary_table(read_rows([out_path]))
    print(table, end="")
    if args.table:
        Path(args.table).write_text(table)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
