"""Versioned Shapes World evaluation prompt sets.

Each set is a JSON file `<name>.v<version>.json` in this folder, listing (prompt, seed) pairs:

- eval-seen:    single-object prompts of colour-shape pairs present in video training data;
- eval-heldout: single-object prompts of the five held-out pairs (yellow triangle, blue circle, green
                square, purple square, white triangle), which only image training data contains;
- eval-two:     two-object prompts.

The files are the reference; `build_eval_set_v1` documents how v1 was drawn and can re-create it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from emu_video.errors import UserError
from emu_video.shapes import palette as P

EVAL_SET_NAMES = ("eval-seen", "eval-heldout", "eval-two")
LATEST_VERSION = 1


@dataclass(frozen=True)
class EvalItem:
    prompt: str
    seed: int


@dataclass(frozen=True)
class EvalSet:
    name: str
    version: int
    description: str
    items: tuple[EvalItem, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


def load_eval_set(name: str, version: int | None = None) -> EvalSet:
    """The prompt set `name` (eval-seen, eval-heldout, eval-two) at `version` (default: the latest)."""
    if name not in EVAL_SET_NAMES:
        raise UserError(f"unknown evaluation set {name!r}; choose one of {', '.join(EVAL_SET_NAMES)}")
    version = LATEST_VERSION if version is None else int(version)
    fname = f"{name}.v{version}.json"
    try:
        text = resources.files(__name__).joinpath(fname).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"evaluation set {name!r} has no version {version}") from None
    data = json.loads(text)
    items = tuple(EvalItem(str(it["prompt"]), int(it["seed"])) for it in data["items"])
    return EvalSet(data["name"], int(data["version"]), data.get("description", ""), items)


# ------------------------------------------------------------------------------------ how v1 was drawn


def _seen_pairs() -> list[tuple[str, str]]:
    return [(c, s) for c in P.COLOR_NAMES for s in P.SHAPES if (c, s) not in P.HELDOUT_PAIRS]


def _heldout_pairs() -> list[tuple[str, str]]:
    return [(c, s) for c in P.COLOR_NAMES for s in P.SHAPES if (c, s) in P.HELDOUT_PAIRS]


def _prompt(objs, background: str) -> str:
    from emu_video.shapes.grammar import caption
    from emu_video.shapes.scene import Scene, ShapeObject

    scene = Scene(tuple(ShapeObject(c, s, 12.0, 64.0, 64.0, m) for c, s, m in objs), background)
    return caption(scene)


def build_eval_set_v1(name: str) -> dict:
    """The v1 content of a set, as stored in its JSON file."""
    from emu_video.shapes.scene import allowed_backgrounds

    rng = np.random.default_rng({"eval-seen": 101, "eval-heldout": 202, "eval-two": 303}[name])
    items = []
    if name == "eval-seen":
        pairs = _seen_pairs()  # 16 pairs x 4 motions each, every motion 9 or 10 times
        for k in range(64):
            c, s = pairs[k % len(pairs)]
            motion = P.MOTIONS[(k + 3 * (k // len(pairs))) % len(P.MOTIONS)]
            bgs = allowed_backgrounds([c])
            items.append(EvalItem(_prompt([(c, s, motion)], bgs[int(rng.integers(len(bgs)))]), 1000 + k))
        desc = "single-object prompts of colour-shape pairs present in video training data"
    elif name == "eval-heldout":
        k = 0
        for rep in range(2):  # 5 held-out pairs x 7 motions, twice, with other backgrounds and seeds
            for c, s in _heldout_pairs():
                for motion in P.MOTIONS:
                    bgs = allowed_backgrounds([c])
                    items.append(EvalItem(_prompt([(c, s, motion)], bgs[int(rng.integers(len(bgs)))]), 2000 + k))
                    k += 1
        desc = "single-object prompts of the five held-out colour-shape pairs (absent from video training data)"
    elif name == "eval-two":
        pairs = _seen_pairs()
        k = 0
        while len(items) < 64:
            (c1, s1), (c2, s2) = (pairs[int(i)] for i in rng.choice(len(pairs), size=2, replace=False))
            if c1 == c2:
                continue
            m1 = P.MOTIONS[k % len(P.MOTIONS)]
            m2 = P.MOTIONS[int(rng.integers(len(P.MOTIONS)))]
            bgs = allowed_backgrounds([c1, c2])
            items.append(EvalItem(_prompt([(c1, s1, m1), (c2, s2, m2)], bgs[int(rng.integers(len(bgs)))]), 3000 + k))
            k += 1
        desc = "two-object prompts (colour-shape pairs present in video training data)"
    else:
        raise UserError(f"unknown evaluation set {name!r}")
    return {
        "name": name,
        "version": 1,
        "description": desc,
        "items": [{"prompt": it.prompt, "seed": it.seed} for it in items],
    }
