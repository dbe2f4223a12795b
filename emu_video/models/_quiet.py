"""Keep library chatter (load progress bars, advisory warnings) out of our users' terminals."""

from __future__ import annotations

import functools
import importlib

LIBRARIES = ("transformers", "diffusers")


@functools.cache
def quiet_libraries(*names: str) -> None:
    """Silence the named libraries' logging and progress bars (default: transformers and diffusers). Only
    the named ones are imported: diffusers alone takes seconds to import."""
    for name in names or LIBRARIES:
        library = importlib.import_module(name)
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()
