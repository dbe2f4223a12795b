"""Scenes: objects with colour, shape, size, start position and motion, on a flat background.

Everything a clip shows follows from a Scene; `random_scene` and `place_objects` draw the free choices
(sizes, start positions, background) so that every rule of Shapes World v1 holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from emu_video.errors import UserError
from emu_video.shapes import palette as P


def make_rng(rng_or_seed) -> np.random.Generator:
    """A numpy Generator from a Generator (returned as is), an int seed, a sequence of ints, or None."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


@dataclass(frozen=True)
class ShapeObject:
    color: str  # one of palette.COLOR_NAMES
    shape: str  # circle | square | triangle
    size: float  # s at frame 0 (circumradius for circle/triangle, half-side for square)
    x: float  # centre at frame 0, px from the left edge (pixel i covers [i, i+1))
    y: float  # centre at frame 0, px from the top edge
    motion: str = "still"  # one of palette.MOTIONS

    def centres(self, num_frames: int = P.NUM_FRAMES) -> np.ndarray:
        """(T, 2) centre (x, y) per frame; the motion spans frames 0..64 of the 65-frame clip."""
        f = np.arange(num_frames, dtype=np.float64) / (P.NUM_FRAMES - 1)
        dx, dy = P.DIRECTIONS.get(self.motion, (0.0, 0.0))
        return np.stack([self.x + dx * P.TRAVEL * f, self.y + dy * P.TRAVEL * f], axis=1)

    def sizes(self, num_frames: int = P.NUM_FRAMES) -> np.ndarray:
        """(T,) size s per frame."""
        f = np.arange(num_frames, dtype=np.float64) / (P.NUM_FRAMES - 1)
        end = {"grow": P.GROW_FACTOR, "shrink": P.SHRINK_FACTOR}.get(self.motion, 1.0)
        return self.size * (1.0 + (end - 1.0) * f)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ShapeObject:
        return cls(
            color=str(d["color"]),
            shape=str(d["shape"]),
            size=float(d["size"]),
            x=float(d["x"]),
            y=float(d["y"]),
            motion=str(d.get("motion") or "still"),
        )


@dataclass(frozen=True)
class Scene:
    objects: tuple[ShapeObject, ...]
    background: str = "black"

    def __post_init__(self):
        object.__setattr__(self, "objects", tuple(self.objects))

    def to_dict(self) -> dict:
        return {"background": self.background, "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(objects=tuple(ShapeObject.from_dict(o) for o in d["objects"]), background=str(d["background"]))

    def problems(self) -> list[str]:
        """Every rule of Shapes World v1 this scene breaks (empty when it is valid)."""
        return scene_problems(self)

    def validate(self) -> Scene:
        probs = self.problems()
        if probs:
            raise UserError("invalid Shapes World scene: " + "; ".join(probs))
        return self


# ----------------------------------------------------------------------------------------------- rules


def position_range(motion: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """((x_lo, x_hi), (y_lo, y_hi)) for the frame-0 centre so the whole motion stays in CENTRE_RANGE."""
    dx, dy = P.DIRECTIONS.get(motion, (0.0, 0.0))
    out = []
    for d in (dx, dy):
        lo = max(P.START_RANGE[0], P.CENTRE_RANGE[0] - d * P.TRAVEL)
        hi = min(P.START_RANGE[1], P.CENTRE_RANGE[1] - d * P.TRAVEL)
        out.append((lo, hi))
    return out[0], out[1]


def min_centre_distance(a: ShapeObject, b: ShapeObject) -> float:
    """The contract's minimum centre distance, 1.6 (s1 + s2) + 4 with s at frame 0."""
    return P.MIN_GAP_FACTOR * (a.size + b.size) + P.MIN_GAP_PAD


def pair_clear(a: ShapeObject, b: ShapeObject, num_frames: int = P.NUM_FRAMES) -> bool:
    """True when the two objects keep the minimum centre distance and their shapes stay apart in every frame."""
    d = np.linalg.norm(a.centres(num_frames) - b.centres(num_frames), axis=1)
    need = np.maximum(
        min_centre_distance(a, b),
        P.bounding_radius(a.shape, 1.0) * a.sizes(num_frames)
        + P.bounding_radius(b.shape, 1.0) * b.sizes(num_frames)
        + P.CLEARANCE,
    )
    return bool(np.all(d >= need - 1e-9))


def scene_problems(scene: Scene) -> list[str]:
    probs: list[str] = []
    if scene.background not in P.BACKGROUNDS:
        probs.append(f"unknown background {scene.background!r}")
    if not 1 <= len(scene.objects) <= 2:
        probs.append(f"a scene holds one or two objects, not {len(scene.objects)}")
    for i, o in enumerate(scene.objects):
        name = f"object {i + 1}"
        if o.color not in P.OBJECT_COLORS:
            probs.append(f"{name}: unknown colour {o.color!r}")
        if o.shape not in P.SHAPES:
            probs.append(f"{name}: unknown shape {o.shape!r}")
        if o.motion not in P.MOTIONS:
            probs.append(f"{name}: unknown motion {o.motion!r}")
            continue
        if not P.SIZE_RANGE[0] - 1e-9 <= o.size <= P.SIZE_RANGE[1] + 1e-9:
            probs.append(f"{name}: size {o.size} outside {P.SIZE_RANGE}")
        (xl, xh), (yl, yh) = position_range(o.motion)
        if not (xl - 1e-9 <= o.x <= xh + 1e-9 and yl - 1e-9 <= o.y <= yh + 1e-9):
            probs.append(f"{name}: start ({o.x}, {o.y}) outside x {xl}..{xh}, y {yl}..{yh} for motion {o.motion}")
        if o.color in P.OBJECT_COLORS and scene.background in P.BACKGROUNDS and not P.allowed_on(
            o.color, scene.background
        ):
            probs.append(f"{name}: {o.color} never appears on {scene.background}")
    if len(scene.objects) == 2 and not probs:
        a, b = scene.objects
        if a.color == b.color:
            probs.append("the two objects must have different colours")
        if not pair_clear(a, b):
            probs.append("the two objects come too close")
    return probs


# ------------------------------------------------------------------------------------------- sampling


def _round(v: float) -> float:
    return float(round(float(v), 3))


def place_objects(
    specs: Sequence[tuple[str, str, str]],
    rng,
    sizes: Sequence[float | None] | None = None,
    max_tries: int = 64,
) -> tuple[ShapeObject, ...]:
    """Draw size and start position for each (color, shape, motion) so that every rule holds.

    Sizes are uniform in SIZE_RANGE (unless given), positions uniform in the motion's allowed range;
    two-object placements are drawn in batches and the first one that keeps the objects apart is taken.
    """
    rng = make_rng(rng)
    specs = list(specs)
    if not 1 <= len(specs) <= 2:
        raise UserError(f"a scene holds one or two objects, not {len(specs)}")
    for _ in range(max_tries):
        objs = []
        for i, (color, shape, motion) in enumerate(specs):
            fixed = sizes[i] if sizes is not None else None
            s = _round(fixed if fixed is not None else rng.uniform(*P.SIZE_RANGE))
            (xl, xh), (yl, yh) = position_range(motion)
            objs.append((color, shape, motion, s, (xl, xh), (yl, yh)))
        if len(objs) == 1:
            c, sh, m, s, xr, yr = objs[0]
            return (ShapeObject(c, sh, s, _round(rng.uniform(*xr)), _round(rng.uniform(*yr)), m),)
        # Two objects: a batch of candidate start positions, checked in every frame at once.
        n = 256
        cand = []
        for c, sh, m, s, xr, yr in objs:
            xs = np.round(rng.uniform(*xr, size=n), 3)
            ys = np.round(rng.uniform(*yr, size=n), 3)
            cand.append((xs, ys))
        (c1, sh1, m1, s1, _, _), (c2, sh2, m2, s2, _, _) = objs
        a0 = ShapeObject(c1, sh1, s1, 0.0, 0.0, m1)
        b0 = ShapeObject(c2, sh2, s2, 0.0, 0.0, m2)
        rel = b0.centres() - a0.centres()  # (T, 2) path of b relative to a, beyond the start offset
        need = np.maximum(
            min_centre_distance(a0, b0),
            P.bounding_radius(sh1, 1.0) * a0.sizes() + P.bounding_radius(sh2, 1.0) * b0.sizes() + P.CLEARANCE,
        )
        ox = cand[1][0] - cand[0][0]
        oy = cand[1][1] - cand[0][1]
        d = np.hypot(ox[:, None] + rel[None, :, 0], oy[:, None] + rel[None, :, 1])  # (n, T)
        ok = np.all(d >= need[None, :] + 1e-6, axis=1)
        idx = np.flatnonzero(ok)
        if idx.size:
            k = int(idx[0])
            return (
                ShapeObject(c1, sh1, s1, float(cand[0][0][k]), float(cand[0][1][k]), m1),
                ShapeObject(c2, sh2, s2, float(cand[1][0][k]), float(cand[1][1][k]), m2),
            )
    raise UserError(f"could not place objects {specs} so that they stay apart; try another seed")


def allowed_backgrounds(colors: Iterable[str]) -> list[str]:
    colors = list(colors)
    return [bg for bg in P.BACKGROUND_NAMES if all(P.allowed_on(c, bg) for c in colors)]


def random_scene(
    rng=None,
    num_objects: int | None = 1,
    exclude_pairs: Iterable[tuple[str, str]] = (),
    motions: Sequence[str] | None = None,
) -> Scene:
    """A random valid scene with `num_objects` (1 or 2; None: either, evenly) objects.

    exclude_pairs: (color, shape) pairs never drawn, e.g. palette.HELDOUT_PAIRS for video training data.
    motions: the motions to draw from (default: all seven).
    """
    rng = make_rng(rng)
    if num_objects is None:
        num_objects = int(rng.integers(1, 3))
    if num_objects not in (1, 2):
        raise UserError(f"num_objects must be 1 or 2, got {num_objects}")
    excluded = {tuple(p) for p in exclude_pairs}
    pairs = [(c, s) for c in P.COLOR_NAMES for s in P.SHAPES if (c, s) not in excluded]
    motions = list(motions or P.MOTIONS)
    while True:
        picks = [pairs[int(rng.integers(len(pairs)))] for _ in range(num_objects)]
        if num_objects == 2 and picks[0][0] == picks[1][0]:
            continue
        bgs = allowed_backgrounds(c for c, _ in picks)
        if not bgs:
            continue
        background = bgs[int(rng.integers(len(bgs)))]
        specs = [(c, s, motions[int(rng.integers(len(motions)))]) for c, s in picks]
        try:
            objects = place_objects(specs, rng)
        except UserError:
            continue
        return Scene(objects, background)
