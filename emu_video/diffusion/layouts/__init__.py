"""The registry of conditioning layouts: the one place where a layout becomes a stage kind and a sampling mode.

* :mod:`.first_frame`   -- image-to-video F (stage kind ``video`` or ``first_frame``)
* :mod:`.interpolation` -- frame interpolation I
* :mod:`.extension`     -- continue a video from its last frames
* :mod:`.direct`        -- text-to-video with no image condition (the paper's baseline)
* :mod:`.keyframes`     -- first and last frame given
"""

from __future__ import annotations

from dataclasses import fields

from emu_video.errors import UserError

from .base import Layout
from .direct import DirectLayout
from .extension import ExtensionLayout
from .first_frame import FirstFrameLayout
from .interpolation import InterpolationLayout
from .keyframes import KeyframesLayout

__all__ = ["LAYOUTS", "Layout", "layout_class", "layout_names", "make_layout"]

LAYOUTS: dict[str, type[Layout]] = {
    cls.name: cls
    for cls in (FirstFrameLayout, InterpolationLayout, ExtensionLayout, DirectLayout, KeyframesLayout)
}
_ALIASES = {alias: cls.name for cls in LAYOUTS.values() for alias in cls.aliases}


def layout_names(aliases: bool = True) -> tuple[str, ...]:
    """The registered layouts' names (and their aliases, such as the stage kind ``video``)."""
    return tuple(LAYOUTS) + (tuple(_ALIASES) if aliases else ())


def layout_class(name: str) -> type[Layout]:
    name = _ALIASES.get(name, name)
    if name not in LAYOUTS:
        raise UserError(f"unknown layout {name!r}; choose one of: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def make_layout(name: str, **options) -> Layout:
    """The layout `name` (or an alias) with `options` (its dataclass fields); unknown options are refused."""
    cls = layout_class(name)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"the {cls.name} layout has no option {', '.join(unknown)}; its options: "
                        f"{', '.join(sorted(known)) or 'none'}")
    layout = cls(**options)
    layout.check_options()
    return layout
