"""Shapes World training data: streaming samples and a writer for video and image manifests.

Every sample is a pure function of (seed, kind, index), so streams can start anywhere, datasets can be
written by several processes, and the same arguments always give the same files.

Video clips never contain the held-out colour-shape pairs; image data cycles through every
colour x shape x background combination (contrast exclusions respected) and also holds two-object
images, held-out pairs included: image data is richer than video data.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emu_video.errors import UserError
from emu_video.shapes import palette as P
from emu_video.shapes.grammar import caption, image_caption
from emu_video.shapes.render import render, render_image
from emu_video.shapes.scene import Scene, place_objects, random_scene

_VIDEO, _IMAGE, _IMAGE_CYCLE, _IMAGE_MOTION = 0, 1, 2, 3

VIDEO_TWO_OBJECT_FRACTION = 0.3
IMAGE_TWO_OBJECT_FRACTION = 0.25
VIDEO_DROP_BACKGROUND = 0.1  # fraction of video captions without the background clause


def image_combinations() -> list[tuple[str, str, str]]:
    """Every allowed (color, shape, background) for a single object: 7 x 3 x 3 less the exclusions."""
    return [
        (c, s, bg)
        for c in P.COLOR_NAMES
        for s in P.SHAPES
        for bg in P.BACKGROUND_NAMES
        if P.allowed_on(c, bg)
    ]


@dataclass
class VideoSample:
    frames: np.ndarray  # (65, 128, 128, 3) uint8 at 16 fps
    caption: str
    scene: Scene
    fps: int = P.FPS


@dataclass
class ImageSample:
    image: np.ndarray  # (128, 128, 3) uint8
    caption: str
    scene: Scene


def _is_two(index: int, fraction: float) -> bool:
    """A fixed schedule with exactly floor(n * fraction) two-object samples among the first n."""
    return math.floor((index + 1) * fraction) > math.floor(index * fraction)


def video_scene(
    seed: int,
    index: int,
    exclude_pairs=P.HELDOUT_PAIRS,
    two_object_fraction: float = VIDEO_TWO_OBJECT_FRACTION,
) -> Scene:
    rng = np.random.default_rng([seed, _VIDEO, index])
    n = 2 if _is_two(index, two_object_fraction) else 1
    return random_scene(rng, num_objects=n, exclude_pairs=exclude_pairs)


def video_sample(
    seed: int,
    index: int,
    exclude_pairs=P.HELDOUT_PAIRS,
    two_object_fraction: float = VIDEO_TWO_OBJECT_FRACTION,
    drop_background: float = VIDEO_DROP_BACKGROUND,
    frames=None,
    size: int = P.SIZE,
) -> VideoSample:
    """Video sample `index` of the stream `seed`: a rendered clip with a training caption (random synonyms).

    frames / size: render only these frame indices, at this canvas size (default: all 65 at 128 px).
    """
    scene = video_scene(seed, index, exclude_pairs, two_object_fraction)
    rng = np.random.default_rng([seed, _VIDEO, index, 1])
    text = caption(scene, rng=rng, include_background=bool(rng.random() >= drop_background))
    return VideoSample(render(scene, frames=frames, size=size), text, scene)


def image_scene(
    seed: int, index: int, two_object_fraction: float = IMAGE_TWO_OBJECT_FRACTION, moving: bool = False
) -> Scene:
    """The scene of image sample `index`. moving: give each object a random motion and place it as a clip
    with that motion starts (an object that will move right starts left of centre, two objects keep
    apart over the whole clip); the image is still the first frame."""
    rng = np.random.default_rng([seed, _IMAGE, index])
    motions = P.MOTIONS if moving else ("still",)
    if _is_two(index, two_object_fraction):
        return random_scene(rng, num_objects=2, motions=motions)
    # Single-object images walk through every combination, in a fresh random order each cycle.
    combos = image_combinations()
    single = index - math.floor(index * two_object_fraction)
    cycle, pos = divmod(single, len(combos))
    order = np.random.default_rng([seed, _IMAGE_CYCLE, cycle]).permutation(len(combos))
    color, shape, background = combos[int(order[pos])]
    motion = motions[int(rng.integers(len(motions)))] if moving else "still"
    return Scene(place_objects([(color, shape, motion)], rng), background)


def image_sample(
    seed: int,
    index: int,
    two_object_fraction: float = IMAGE_TWO_OBJECT_FRACTION,
    size: int = P.SIZE,
    motion_captions: float = 0.0,
) -> ImageSample:
    """Image sample `index` of the stream `seed`: a first frame with a motion-free caption.

    motion_captions: the share of samples that are the first frame of a clip, captioned with its motions
    ("a red circle moves left ..."). They teach a text-to-image model to draw the first frame of a video
    prompt where that video can play out; the other captions name no motion.
    """
    moving = motion_captions > 0 and np.random.default_rng([seed, _IMAGE_MOTION, index]).random() < motion_captions
    scene = image_scene(seed, index, two_object_fraction, moving=moving)
    rng = np.random.default_rng([seed, _IMAGE, index, 1])
    text = caption(scene, rng=rng) if moving else image_caption(scene, rng=rng)
    return ImageSample(render_image(scene, size=size), text, scene)


def iter_video_samples(seed: int = 0, start: int = 0, count: int | None = None, **kwargs) -> Iterator[VideoSample]:
    """Video samples start, start+1, ... (endless when count is None). kwargs go to video_sample."""
    i = start
    while count is None or i < start + count:
        yield video_sample(seed, i, **kwargs)
        i += 1


def iter_image_samples(seed: int = 0, start: int = 0, count: int | None = None, **kwargs) -> Iterator[ImageSample]:
    """Image samples start, start+1, ... (endless when count is None). kwargs go to image_sample."""
    i = start
    while count is None or i < start + count:
        yield image_sample(seed, i, **kwargs)
        i += 1


# -------------------------------------------------------------------------------------------- writer


def _write_video_item(job) -> dict:
    from emu_video.io.video import write_video

    out_dir, seed, index, opts = job
    s = video_sample(seed, index, **opts)
    rel = f"videos/{index:06d}.mp4"
    write_video(Path(out_dir) / rel, s.frames, s.fps)
    return {"path": rel, "caption": s.caption, "fps": s.fps, "num_frames": int(s.frames.shape[0]),
            "scene": s.scene.to_dict()}


def _write_image_item(job) -> dict:
    from emu_video.io.video import write_image

    out_dir, seed, index, opts = job
    s = image_sample(seed, index, **opts)
    rel = f"images/{index:06d}.png"
    write_image(Path(out_dir) / rel, s.image)
    return {"path": rel, "caption": s.caption, "scene": s.scene.to_dict()}


def _write_manifest(path: Path, rows_iter, total: int, desc: str, progress: bool) -> int:
    from tqdm.auto import tqdm

    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in tqdm(rows_iter, total=total, desc=desc, unit=desc.split()[-1], disable=not progress):
            fh.write(json.dumps(row) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def make_dataset(
    out_dir: str | os.PathLike,
    num_videos: int,
    num_images: int,
    seed: int = 0,
    video_two_object_fraction: float = VIDEO_TWO_OBJECT_FRACTION,
    image_two_object_fraction: float = IMAGE_TWO_OBJECT_FRACTION,
    drop_background: float = VIDEO_DROP_BACKGROUND,
    image_motion_captions: float = 0.0,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Write a Shapes World dataset:

        out_dir/videos/NNNNNN.mp4 + out_dir/videos.jsonl   (65 frames, 128x128, 16 fps, H.264)
        out_dir/images/NNNNNN.png + out_dir/images.jsonl   (first frames; image_motion_captions of them are
                                                            first frames of clips, captioned with motions)
        out_dir/shapes_world.json                          (what was written and with which settings)

    Manifest lines: {"path": "videos/000000.mp4", "caption": ..., "fps": 16, "num_frames": 65, "scene": {...}}
    and {"path": "images/000000.png", "caption": ..., "scene": {...}}, paths relative to out_dir.
    Returns the summary written to shapes_world.json.
    """
    if num_videos < 0 or num_images < 0:
        raise UserError("the number of videos and images must not be negative")
    if num_videos == 0 and num_images == 0:
        raise UserError("nothing to write: ask for some videos and/or images")
    for name, frac in (("two-object fraction", video_two_object_fraction), ("image two-object fraction",
                       image_two_object_fraction), ("background drop rate", drop_background),
                      ("image motion-caption share", image_motion_captions)):
        if not 0.0 <= frac <= 1.0:
            raise UserError(f"the {name} must lie in [0, 1], got {frac}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    existing = [p for p in ("videos.jsonl", "images.jsonl") if (out / p).exists()]
    if existing and not overwrite:
        raise UserError(f"{out} already holds a dataset ({', '.join(existing)}); pass overwrite=True (--overwrite) to replace it")
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, int(workers))
    video_opts = {"two_object_fraction": video_two_object_fraction, "drop_background": drop_background}
    image_opts = {"two_object_fraction": image_two_object_fraction, "motion_captions": image_motion_captions}
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        mapper = (lambda fn, jobs: pool.map(fn, jobs, chunksize=8)) if pool else map
        if num_videos:
            jobs = ((str(out), seed, i, video_opts) for i in range(num_videos))
            _write_manifest(out / "videos.jsonl", mapper(_write_video_item, jobs), num_videos, "writing videos",
                            progress)
        if num_images:
            jobs = ((str(out), seed, i, image_opts) for i in range(num_images))
            _write_manifest(out / "images.jsonl", mapper(_write_image_item, jobs), num_images, "writing images",
                            progress)
    finally:
        if pool:
            pool.shutdown()
    summary = {
        "domain": "shapes-world",
        "version": 1,
        "seed": seed,
        "num_videos": num_videos,
        "num_images": num_images,
        "video_manifest": "videos.jsonl" if num_videos else None,
        "image_manifest": "images.jsonl" if num_images else None,
        "video_two_object_fraction": video_two_object_fraction,
        "image_two_object_fraction": image_two_object_fraction,
        "video_drop_background": drop_background,
        "image_motion_captions": image_motion_captions,
        "heldout_pairs": sorted([list(p) for p in P.HELDOUT_PAIRS]),
        "frames": P.NUM_FRAMES,
        "fps": P.FPS,
        "size": P.SIZE,
    }
    (out / "shapes_world.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


__all__ = [
    "ImageSample",
    "VideoSample",
    "image_combinations",
    "image_sample",
    "image_scene",
    "iter_image_samples",
    "iter_video_samples",
    "make_dataset",
    "video_sample",
    "video_scene",
]
