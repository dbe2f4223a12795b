"""Shapes World v1 constants: canvas, timing, palette, shapes, motions and the rules that tie them."""

from __future__ import annotations

import numpy as np

# Canvas and time.
SIZE = 128  # frames are SIZE x SIZE RGB
FPS = 16
NUM_FRAMES = 65  # frame i is at t = i / FPS seconds

# Palette (sRGB 0..255). Order matters: it is the index order the judge uses.
OBJECT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 70),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 50),
    "purple": (150, 70, 200),
    "orange": (245, 140, 30),
    "white": (240, 240, 240),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (16, 16, 16),
    "gray": (100, 100, 100),
    "beige": (215, 200, 170),
}
COLOR_NAMES: tuple[str, ...] = tuple(OBJECT_COLORS)
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)

# Every palette entry (objects first, then backgrounds), as the judge classifies pixels.
PALETTE_NAMES: tuple[str, ...] = COLOR_NAMES + BACKGROUND_NAMES
PALETTE_RGB = np.array([*OBJECT_COLORS.values(), *BACKGROUNDS.values()], dtype=np.int32)

# Object colour -> backgrounds it never appears on (too little contrast).
LOW_CONTRAST: dict[str, frozenset[str]] = {
    "white": frozenset({"beige"}),
    "yellow": frozenset({"beige"}),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "still", "grow", "shrink")

# Colour-shape pairs that video training data never contains (image data does).
HELDOUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("yellow", "triangle"),
        ("blue", "circle"),
        ("green", "square"),
        ("purple", "square"),
        ("white", "triangle"),
    }
)

# Object geometry and motion parameters.
SIZE_RANGE = (10.0, 16.0)  # s at frame 0: circumradius (circle, triangle) or half-side (square)
START_RANGE = (28.0, 100.0)  # centre at frame 0, both axes
CENTRE_RANGE = (16.0, 112.0)  # centre over the whole motion, both axes
TRAVEL = 40.0  # px over the clip for left/right/up/down
GROW_FACTOR = 1.6
SHRINK_FACTOR = 0.6
MIN_GAP_FACTOR = 1.6  # two centres stay >= 1.6 * (s1 + s2) + 4 px apart in every frame
MIN_GAP_PAD = 4.0
# In addition, the shapes themselves (their bounding circles at the current size) keep this much clear
# space, so that no motion can make two objects touch (e.g. two growing squares along a diagonal).
CLEARANCE = 2.0

# Unit direction of travel in (x, y) with y pointing down (towards row 63 .. 127); up is towards row 0.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}


def allowed_on(color: str, background: str) -> bool:
    """Whether an object of `color` may appear on `background` (the contrast exclusions)."""
    return background not in LOW_CONTRAST.get(color, frozenset())


def bounding_radius(shape: str, size: float) -> float:
    """Radius of the smallest circle around the shape's centre that contains it."""
    return size * np.sqrt(2.0) if shape == "square" else size


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
