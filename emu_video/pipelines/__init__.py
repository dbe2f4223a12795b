"""Pipelines: text-to-image, image-to-video, interpolation, extension and the factorized text-to-video."""

from emu_video.pipelines.base import ImageOutput, VideoOutput
from emu_video.pipelines.components import EmuVideoComponents, ModelIndex
from emu_video.pipelines.extend import ExtendPipeline
from emu_video.pipelines.image_to_video import ImageToVideoPipeline
from emu_video.pipelines.interpolate import InterpolatePipeline
from emu_video.pipelines.text_to_image import TextToImagePipeline
from emu_video.pipelines.text_to_video import TextToVideoPipeline

__all__ = [
    "EmuVideoComponents",
    "ExtendPipeline",
    "ImageOutput",
    "ImageToVideoPipeline",
    "InterpolatePipeline",
    "ModelIndex",
    "TextToImagePipeline",
    "TextToVideoPipeline",
    "VideoOutput",
]
