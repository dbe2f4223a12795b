"""emu_video: factorized text-to-video generation (Emu Video) with latent diffusion."""

import logging as _logging

__version__ = "0.1.0"

# bitsandbytes (the optional 8-bit AdamW) is imported by transformers and diffusers whenever it is installed,
# and on CPUs with bf16 instructions its import warns that an optional kernel could not be fetched from the
# model hub: advice for 4-bit inference that none of our commands does. Keep it out of users' terminals.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
