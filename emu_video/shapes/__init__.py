"""Shapes World v1: the built-in synthetic video domain (scenes, renderer, caption grammar, datasets,
judge, evaluation sets and evaluation). See docs/shapes.md."""

from emu_video.shapes.datasets import (
    ImageSample,
    VideoSample,
    image_sample,
    iter_image_samples,
    iter_video_samples,
    make_dataset,
    video_sample,
)
from emu_video.shapes.evalsets import EVAL_SET_NAMES, EvalItem, EvalSet, load_eval_set
from emu_video.shapes.evaluate import (
    evaluate_set,
    evaluate_sets,
    format_table,
    summarize_reports,
)
from emu_video.shapes.grammar import (
    ParsedObject,
    ParsedPrompt,
    caption,
    image_caption,
    parse_prompt,
    scene_from_prompt,
)
from emu_video.shapes.judge import judge
from emu_video.shapes.palette import (
    BACKGROUNDS,
    FPS,
    HELDOUT_PAIRS,
    MOTIONS,
    NUM_FRAMES,
    OBJECT_COLORS,
    SHAPES,
    SIZE,
)
from emu_video.shapes.render import render, render_image
from emu_video.shapes.scene import Scene, ShapeObject, place_objects, random_scene
from emu_video.shapes.validate import validate_judge

__all__ = [
    "BACKGROUNDS",
    "EVAL_SET_NAMES",
    "FPS",
    "HELDOUT_PAIRS",
    "MOTIONS",
    "NUM_FRAMES",
    "OBJECT_COLORS",
    "SHAPES",
    "SIZE",
    "EvalItem",
    "EvalSet",
    "ImageSample",
    "ParsedObject",
    "ParsedPrompt",
    "Scene",
    "ShapeObject",
    "VideoSample",
    "caption",
    "evaluate_set",
    "evaluate_sets",
    "format_table",
    "image_caption",
    "image_sample",
    "iter_image_samples",
    "iter_video_samples",
    "judge",
    "load_eval_set",
    "make_dataset",
    "parse_prompt",
    "place_objects",
    "random_scene",
    "render",
    "render_image",
    "scene_from_prompt",
    "summarize_reports",
    "validate_judge",
    "video_sample",
]
