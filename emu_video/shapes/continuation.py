"""Clips whose motion changes part-way: training data for the extension layout.

The extension layout conditions on the first `past_frames` frames of a clip and a prompt that says what
happens *next*. A continuation sample is a scene whose objects follow their motions up to the change frame
(the clip's last past frame) and from there on follow new motions, starting from where and how big they
are at that frame; its caption names the new motions. With probability `1 - change` nothing changes (the
clip is an ordinary one, and its caption is also the continuation's), so the model learns both to carry a
motion on and to switch to the one the prompt asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from emu_video.shapes import palette as P
from emu_video.shapes.datasets import VIDEO_DROP_BACKGROUND, video_scene
from emu_video.shapes.grammar import caption
from emu_video.shapes.render import render
from emu_video.shapes.scene import Scene, ShapeObject, pair_clear

_CONTINUATION = 4  # rng stream tag (datasets.py uses 0..3)

# The motion that undoes each one: chained segments that alternate them keep the object on the canvas.
OPPOSITE: dict[str, str] = {"left": "right", "right": "left", "up": "down", "down": "up", "grow": "shrink",
                            "shrink": "grow", "still": "still"}


@dataclass
class ContinuationSample:
    frames: np.ndarray  # (len(frames), size, size, 3) uint8
    caption: str  # names the motions after the change frame
    before: Scene  # the scene up to the change frame
    after: Scene  # the scene from the change frame on (its frame 0 is the change frame)
    change_frame: int  # 65-frame (16 fps) index of the last frame that follows `before`
    changed: bool


def state_at(obj: ShapeObject, frame: int) -> tuple[float, float, float]:
    """(x, y, size) of `obj` at 16 fps frame `frame` of its motion."""
    centres, sizes = obj.centres(frame + 1), obj.sizes(frame + 1)
    return float(centres[-1, 0]), float(centres[-1, 1]), float(sizes[-1])


def continued(scene: Scene, change_frame: int, motions: Sequence[str]) -> Scene:
    """The scene from `change_frame` on: every object where it is then, moving by `motions` (one each)."""
    objects = []
    for obj, motion in zip(scene.objects, motions, strict=True):
        x, y, s = state_at(obj, change_frame)
        objects.append(replace(obj, x=x, y=y, size=s, motion=motion))
    return Scene(tuple(objects), scene.background)


def stays_valid(after: Scene, num_frames: int) -> bool:
    """Whether the continued scene's objects keep their centres inside the canvas range and apart from each
    other for `num_frames` frames (sizes may leave the start range: a grown object stays grown)."""
    lo, hi = P.CENTRE_RANGE
    for obj in after.objects:
        c = obj.centres(num_frames)
        if c.min() < lo - 1e-9 or c.max() > hi + 1e-9:
            return False
    if len(after.objects) == 2:
        return pair_clear(*after.objects, num_frames=num_frames)
    return True


def render_continuation(before: Scene, after: Scene, change_frame: int, frames: Sequence[int] | None = None,
                        size: int = P.SIZE) -> np.ndarray:
    """Frames of the 65-frame timeline: `before` up to `change_frame`, `after` (shifted) from there on."""
    idx = np.arange(P.NUM_FRAMES) if frames is None else np.asarray(frames, dtype=np.int64)
    out = np.empty((len(idx), size, size, 3), dtype=np.uint8)
    early = idx <= change_frame
    if early.any():
        out[early] = render(before, frames=idx[early], size=size)
    if (~early).any():
        out[~early] = render(after, frames=idx[~early] - change_frame, size=size)
    return out


def draw_new_motions(scene: Scene, change_frame: int, rng: np.random.Generator) -> Scene | None:
    """A continued scene where at least one object takes a new motion and all stay valid to the end of the
    timeline; None when no such change exists (then the clip goes on unchanged)."""
    remaining = P.NUM_FRAMES - change_frame
    options = []
    for obj in scene.objects:
        others = [m for m in P.MOTIONS if m != obj.motion]
        options.append([obj.motion, *[others[i] for i in rng.permutation(len(others))]])
    for _ in range(16):
        pick = [opts[int(rng.integers(len(opts)))] for opts in options]
        if all(m == o.motion for m, o in zip(pick, scene.objects)):
            k = int(rng.integers(len(pick)))  # change at least one object
            pick[k] = options[k][1 + int(rng.integers(len(options[k]) - 1))]
        after = continued(scene, change_frame, pick)
        if stays_valid(after, remaining):
            return after
    return None


def continuation_sample(seed: int, index: int, change_frame: int, change: float, frames: Sequence[int] | None = None,
                        size: int = P.SIZE, two_object_fraction: float | None = None,
                        exclude_pairs=P.HELDOUT_PAIRS) -> ContinuationSample:
    """Continuation sample `index` of stream `seed` (the same scenes as `video_sample`): with probability
    `change` the motions change after `change_frame`; the caption (random synonyms) names the motions from
    there on. `frames` / `size`: the 16 fps frame indices and canvas side to render."""
    kwargs = {} if two_object_fraction is None else {"two_object_fraction": two_object_fraction}
    before = video_scene(seed, index, exclude_pairs, **kwargs)
    rng = np.random.default_rng([seed, _CONTINUATION, index])
    after = draw_new_motions(before, change_frame, rng) if rng.random() < change else None
    changed = after is not None
    if after is None:  # an ordinary clip (rendered as one scene: sizes of grow / shrink change linearly)
        after = continued(before, change_frame, [o.motion for o in before.objects])
    text = caption(after, rng=rng, include_background=bool(rng.random() >= VIDEO_DROP_BACKGROUND))
    pixels = render_continuation(before, after, change_frame, frames, size) if changed else render(before, frames, size)
    return ContinuationSample(pixels, text, before, after, int(change_frame), changed)
