"""Models: the factorized video U-Net, its configuration and weight I/O."""

from emu_video.models.config import (
    PRESETS,
    VideoUNetConfig,
    paper_config,
    preset,
    sd15_config,
    tiny_config,
)
from emu_video.models.unet import VideoUNet, is_video_param

__all__ = [
    "PRESETS",
    "VideoUNet",
    "VideoUNetConfig",
    "is_video_param",
    "paper_config",
    "preset",
    "sd15_config",
    "tiny_config",
]
