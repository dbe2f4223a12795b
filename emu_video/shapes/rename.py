"""Captions with some words said another way (`shapes.rename`): teach a fine-tune a new word for something the
model knows, e.g. {"red": "vermilion"}, and measure whether it learned it (scripts/lora_new_word.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from emu_video.errors import UserError
from emu_video.shapes.grammar import VOCABULARY


def check_renames(renames: Mapping[str, str]) -> None:
    """Each key a word of the Shapes World grammar, each value a new word (or words) of letters."""
    if not isinstance(renames, Mapping):
        raise UserError(f"shapes.rename must be a table of word = \"new word\", got {renames!r}")
    for old, new in renames.items():
        if old not in VOCABULARY:
            raise UserError(f"shapes.rename: {old!r} is not a word of Shapes World captions "
                            f"(e.g. {', '.join(sorted(VOCABULARY)[:6])}, ...)")
        if not isinstance(new, str) or not re.fullmatch(r"[a-z]+( [a-z]+)*", new):
            raise UserError(f"shapes.rename: the new word for {old!r} must be lower-case letters, got {new!r}")


def rename_words(text: str, renames: Mapping[str, str]) -> str:
    """`text` with every whole word that is a key of `renames` replaced by its value."""
    if not renames:
        return text
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(renames, key=len, reverse=True)) + r")\b")
    return pattern.sub(lambda m: renames[m.group(1)], text)
