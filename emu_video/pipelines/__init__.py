"""Pipelines: text-to-image, image-to-video (first frame or keyframes), interpolation, extension, long videos
(chained extensions) and the factorized (or direct) text-to-video. Each is a sequence of the named steps in `base.py`."""

from emu_video.pipelines.base import ImageOutput, Settings, VideoOutput
from emu_video.pipelines.components import EmuVideoComponents
from emu_video.pipelines.extend import ExtendPipeline
from emu_video.pipelines.image_to_video import ImageToVideoPipeline
from emu_video.pipelines.interpolate import InterpolatePipeline
from emu_video.pipelines.long_video import LongVideoPipeline
from emu_video.pipelines.model_index import ModelIndex
from emu_video.pipelines.text_to_image import TextToImagePipeline
from emu_video.pipelines.text_to_video import TextToVideoPipeline

__all__ = [
    "EmuVideoComponents",
    "ExtendPipeline",
    "ImageOutput",
    "ImageToVideoPipeline",
    "InterpolatePipeline",
    "LongVideoPipeline",
    "ModelIndex",
    "Settings",
    "TextToImagePipeline",
    "TextToVideoPipeline",
    "VideoOutput",
]
