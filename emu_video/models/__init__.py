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

# The diffusers import (serialization.PretrainedMixin.from_diffusers) under its historical function name.
from_diffusers_unet = VideoUNet.from_diffusers

__all__ = [
    "PRESETS",
    "VideoUNet",
    "VideoUNetConfig",
    "from_diffusers_unet",
    "is_video_param",
    "paper_config",
    "preset",
    "sd15_config",
    "tiny_config",
]
