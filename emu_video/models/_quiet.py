"""Keep library chatter (load progress bars, advisory warnings) out of our users' terminals."""

from __future__ import annotations

import functools


@functools.cache
def quiet_libraries() -> None:
    import diffusers
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
