"""emu_video: factorized text-to-video generation (Emu Video) with latent diffusion."""

__version__ = "0.1.0"
