"""The Shapes World caption grammar: write captions for scenes and read prompts back into scenes.

    prompt     := clause ["and" clause] [background]  ["."]
    clause     := article COLOR SHAPE [MOTION]
    background := "on" article BACKGROUND "background"
    article    := "a" | "an"

Any letter case is accepted. A clause without a motion is the image-only form ("a red circle on a black
background"); reading it into a scene gives a still object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from emu_video.errors import UserError
from emu_video.shapes import palette as P
from emu_video.shapes.scene import Scene, allowed_backgrounds, make_rng, place_objects

# Canonical word or phrase first.
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
}
MOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("moves left", "slides to the left", "drifts left"),
    "right": ("moves right", "slides to the right", "drifts right"),
    "up": ("moves up", "rises", "floats upward"),
    "down": ("moves down", "falls", "sinks"),
    "still": ("stays still", "does not move", "sits still"),
    "grow": ("grows", "gets bigger", "expands"),
    "shrink": ("shrinks", "gets smaller", "contracts"),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "black": ("black",),
    "gray": ("gray", "grey"),
    "beige": ("beige",),
}
ARTICLES = ("a", "an")

_SHAPE_OF = {w: shape for shape, words in SHAPE_WORDS.items() for w in words}
_BACKGROUND_OF = {w: bg for bg, words in BACKGROUND_WORDS.items() for w in words}
# Motion phrases as token tuples, longest first so that the longest phrase wins.
_MOTION_OF = sorted(
    ((tuple(p.split()), motion) for motion, phrases in MOTION_PHRASES.items() for p in phrases),
    key=lambda item: -len(item[0]),
)
VOCABULARY = frozenset(
    [*ARTICLES, *P.COLOR_NAMES, *_SHAPE_OF, *_BACKGROUND_OF, "and", "on", "background"]
    + [w for phrase, _ in _MOTION_OF for w in phrase]
)


@dataclass(frozen=True)
class ParsedObject:
    color: str
    shape: str
    motion: str | None  # None: the clause names no motion (image captions)


@dataclass(frozen=True)
class ParsedPrompt:
    objects: tuple[ParsedObject, ...]
    background: str | None  # None: the prompt names no background

    def to_dict(self) -> dict:
        return {
            "objects": [{"color": o.color, "shape": o.shape, "motion": o.motion} for o in self.objects],
            "background": self.background,
        }


# --------------------------------------------------------------------------------------------- writing


def _pick(options: tuple[str, ...], rng: np.random.Generator | None) -> str:
    return options[0] if rng is None else options[int(rng.integers(len(options)))]


def _clause(obj, rng, include_motion: bool) -> str:
    words = [P.article(obj.color), obj.color, _pick(SHAPE_WORDS[obj.shape], rng)]
    motion = getattr(obj, "motion", None)
    if include_motion and motion is not None:
        words.append(_pick(MOTION_PHRASES[motion], rng))
    return " ".join(words)


def caption(
    scene: Scene | ParsedPrompt,
    rng=None,
    include_background: bool = True,
    include_motion: bool = True,
) -> str:
    """The caption of a scene: canonical words without `rng`, random synonyms with one (training captions).

    >>> caption(scene)  # e.g. "a red circle moves left and a blue square moves up on a black background"
    """
    if rng is not None:
        rng = make_rng(rng)
    text = " and ".join(_clause(o, rng, include_motion) for o in scene.objects)
    if include_background and scene.background is not None:
        text += f" on a {_pick(BACKGROUND_WORDS[scene.background], rng)} background"
    return text


def image_caption(scene: Scene, rng=None) -> str:
    """The motion-free caption of a scene's first frame: "a red circle on a black background"."""
    return caption(scene, rng=rng, include_background=True, include_motion=False)


# --------------------------------------------------------------------------------------------- reading


def tokenize(prompt: str) -> list[str]:
    text = prompt.strip().lower()
    if text.endswith("."):
        text = text[:-1].rstrip()
    return text.split()


def _describe_expected(options: Iterable[str]) -> str:
    return ", ".join(options)


_EXPECT_COLOR = "a colour (" + _describe_expected(P.COLOR_NAMES) + ")"
_EXPECT_SHAPE = "a shape (" + _describe_expected(_SHAPE_OF) + ")"
_EXPECT_BACKGROUND = "a background colour (" + _describe_expected(_BACKGROUND_OF) + ")"
_EXPECT_AFTER_SHAPE = "a motion (e.g. 'moves left', 'rises', 'grows'), 'and', 'on a ... background' or the end"


class _Fail(Exception):
    def __init__(self, pos: int, expected: str):
        self.pos, self.expected = pos, expected


def _parse_tokens(tokens: list[str]) -> ParsedPrompt:
    pos = 0
    n = len(tokens)
    objects: list[ParsedObject] = []

    def peek() -> str | None:
        return tokens[pos] if pos < n else None

    while True:
        if peek() not in ARTICLES:
            raise _Fail(pos, "'a' or 'an'")
        pos += 1
        if peek() not in P.OBJECT_COLORS:
            raise _Fail(pos, _EXPECT_COLOR)
        color = tokens[pos]
        pos += 1
        if peek() not in _SHAPE_OF:
            raise _Fail(pos, _EXPECT_SHAPE)
        shape = _SHAPE_OF[tokens[pos]]
        pos += 1
        motion = None
        for phrase, m in _MOTION_OF:
            if tuple(tokens[pos : pos + len(phrase)]) == phrase:
                motion, pos = m, pos + len(phrase)
                break
        objects.append(ParsedObject(color, shape, motion))
        if peek() == "and":
            if len(objects) == 2:
                raise _Fail(pos, "'on a ... background' or the end (a prompt names at most two objects)")
            pos += 1
            continue
        break
    background = None
    if peek() == "on":
        pos += 1
        if peek() not in ARTICLES:
            raise _Fail(pos, "'a' or 'an'")
        pos += 1
        if peek() not in _BACKGROUND_OF:
            raise _Fail(pos, _EXPECT_BACKGROUND)
        background = _BACKGROUND_OF[tokens[pos]]
        pos += 1
        if peek() != "background":
            raise _Fail(pos, "'background'")
        pos += 1
    if pos != n:
        raise _Fail(pos, _EXPECT_AFTER_SHAPE if background is None else "the end of the prompt")
    return ParsedPrompt(tuple(objects), background)


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Read a prompt in the caption grammar; raise UserError naming the words that do not fit."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError("empty prompt: describe one or two objects, e.g. 'a red circle moves left'")
    tokens = tokenize(prompt)
    unknown = [w for w in tokens if w not in VOCABULARY]
    try:
        parsed = _parse_tokens(tokens)
    except _Fail as fail:
        if unknown:
            words = ", ".join(repr(w) for w in dict.fromkeys(unknown))
            raise UserError(
                f"cannot read prompt {prompt!r}: could not place {words} (not words of the Shapes World "
                f"caption grammar, e.g. 'a red circle moves left on a black background')"
            ) from None
        rest = " ".join(tokens[fail.pos :])
        done = " ".join(tokens[: fail.pos])
        after = f"after {done!r}" if done else "at the start"
        if rest:
            problem = f"could not place {rest!r} {after}"
        else:
            problem = f"it ends too early, {after}"
        raise UserError(f"cannot read prompt {prompt!r}: {problem} (expected {fail.expected})") from None
    colors = [o.color for o in parsed.objects]
    if len(colors) == 2 and colors[0] == colors[1]:
        raise UserError(
            f"cannot read prompt {prompt!r}: the two objects must have different colours ({colors[0]!r} twice)"
        )
    return parsed


def scene_from_prompt(prompt: str, seed=0) -> Scene:
    """The scene a prompt describes, with the free choices (sizes, start positions, and the background
    when the prompt names none) drawn from `seed`. A clause without a motion gives a still object."""
    parsed = parse_prompt(prompt)
    rng = make_rng(seed)
    colors = [o.color for o in parsed.objects]
    if parsed.background is None:
        options = allowed_backgrounds(colors)
        if not options:
            raise UserError(f"prompt {prompt!r}: no background suits {' and '.join(colors)}")
        background = options[int(rng.integers(len(options)))]
    else:
        background = parsed.background
        bad = [c for c in colors if not P.allowed_on(c, background)]
        if bad:
            raise UserError(
                f"prompt {prompt!r}: {bad[0]} objects never appear on a {background} background in Shapes World "
                f"(too little contrast); choose another background"
            )
    specs = [(o.color, o.shape, o.motion or "still") for o in parsed.objects]
    return Scene(place_objects(specs, rng), background)
