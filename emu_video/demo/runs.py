"""The model behind the demo: one loaded model folder, one run at a time, each video written as an H.264 mp4
and a GIF. Knows nothing of the web page: every method takes checked inputs and returns files and notes.

The checks, warnings and notes are the command line's (`emu_video.cli.generate`), so a prompt outside the
model's domain, a video of the wrong length or a layout sampled with another layout's weights read the same
in the page as in the terminal.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emu_video.cli.generate import (
    check_args,
    check_interpolation_input,
    domain_warnings,
    extension_note,
    slug,
    weights_note,
)
from emu_video.io.video import Video, write_video
from emu_video.pipelines import (
    ExtendPipeline,
    TextToVideoPipeline,
)
from emu_video.pipelines.base import VideoOutput
from emu_video.pipelines.components import EmuVideoComponents


@dataclass(frozen=True)
class Sampling:
    """The settings every tab shares."""

    seed: int
    steps: int
    sampler: str
    w_img: float
    w_txt: float

    def kwargs(self) -> dict:
        return {"seed": self.seed, "num_inference_steps": self.steps, "sampler": self.sampler, "w_img": self.w_img,
                "w_txt": self.w_txt, "progress": True}


@dataclass
class Result:
    """One finished video: its two files and what to tell the user about it."""

    mp4: Path
    gif: Path
    num_frames: int
    fps: float
    width: int
    height: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.num_frames} frames at {self.fps:g} fps ({self.num_frames / self.fps:.2f} s), "
                f"{self.width}x{self.height}")


def example_prompts(components: EmuVideoComponents, per_set: int = 2) -> list[str]:
    """Prompts the model knows: for a Shapes World model, the first of each evaluation set (seen pairs,
    held-out pairs, two objects); none for other models."""
    if components.index.domain != "shapes_world":
        return []
    from emu_video.shapes.evalsets import EVAL_SET_NAMES, load_eval_set

    prompts = []
    for name in EVAL_SET_NAMES:
        items = load_eval_set(name).items
        step = max(1, len(items) // per_set)
        prompts += [item.prompt for item in items[::step][:per_set]]
    return prompts


class DemoModel:
    """A model folder's components behind a lock (one run at a time: the pipelines swap layout weights in
    place), writing each run's files into its own folder under `outputs` and keeping the newest `keep`."""

    def __init__(self, components: EmuVideoComponents, outputs: str | Path, keep: int = 64):
        self.components = components
        self.outputs = Path(outputs)
        self.keep = keep
        self._lock = threading.Lock()
        self._runs = itertools.count(1)
        self.text_to_video_pipe = TextToVideoPipeline(components)
        self.image_to_video_pipe = self.text_to_video_pipe.image_to_video
        self.interpolate_pipe = self.text_to_video_pipe.interpolate
        self.extend_pipe = ExtendPipeline(components)

    @property
    def defaults(self) -> dict:
        return self.components.defaults

    @property
    def can_interpolate(self) -> bool:
        return self.components.has_layout("interpolation")

    def examples(self) -> list[str]:
        return example_prompts(self.components)

    # Checks --------------------------------------------------------------------------------------------------
    def _check(self, prompt: str, sampling: Sampling, prompt_optional: bool = False, **values) -> None:
        """The command line's argument checks on the page's values."""
        check_args(argparse.Namespace(prompt=prompt, prompt_optional=prompt_optional, steps=sampling.steps,
                                      w_img=sampling.w_img, w_txt=sampling.w_txt, device=str(self.components.device),
                                      **values))

    def _check_interpolation(self, frames: int) -> None:
        if self.can_interpolate:
            self.interpolate_pipe.check_length(frames)

    # Runs -----------------------------------------------------------------------------------------------------
    def text_to_video(self, prompt: str, sampling: Sampling, frames: int, interpolate: bool = True,
                      interp_steps: int | None = None, image_guidance: float | None = None,
                      on_first_frame: Callable[[np.ndarray], None] | None = None) -> Result:
        """First frame (handed to `on_first_frame` as soon as it exists), video, interpolation."""
        self._check(prompt, sampling, frames=frames, interp_steps=interp_steps, image_guidance=image_guidance)
        if interpolate:
            self._check_interpolation(frames)
        notes = domain_warnings(self.components, prompt)
        with self._lock:
            video = self.text_to_video_pipe(prompt, interpolation_steps=interp_steps, image_guidance=image_guidance,
                                            num_frames=frames, interpolate=interpolate, on_first_frame=on_first_frame,
                                            **sampling.kwargs())
            return self._write(prompt, sampling.seed, video, notes)

    def animate(self, image: np.ndarray, prompt: str, sampling: Sampling, frames: int,
                last_image: np.ndarray | None = None, interpolate: bool = False,
                interp_steps: int | None = None) -> Result:
        """The video from `image` (to `last_image` when given), optionally interpolated."""
        self._check(prompt, sampling, frames=frames, interp_steps=interp_steps)
        if interpolate:
            self._check_interpolation(frames)
        images = [image] if last_image is None else [image, last_image]
        notes = domain_warnings(self.components, prompt, images)
        interpolate = interpolate and self.can_interpolate
        with self._lock:
            video = self.image_to_video_pipe(image, prompt, last_image=last_image, num_frames=frames,
                                             decode=not interpolate, **sampling.kwargs())
            if interpolate:
                video = self._interpolated(video, prompt, sampling, interp_steps)
            return self._write(prompt, sampling.seed, video, notes)

    def _interpolated(self, video: VideoOutput, prompt: str, sampling: Sampling, steps: int | None) -> VideoOutput:
        kwargs = sampling.kwargs() | {"num_inference_steps": steps}
        out = self.interpolate_pipe(None, prompt, latents=video.latents, fps=video.fps, **kwargs)
        out.info = video.info
        return out

    def interpolate(self, video: Video, prompt: str, sampling: Sampling) -> Result:
        """`video` (8k frames) at 4x its frame rate; `sampling.steps` are the interpolation model's."""
        self._check(prompt, sampling, prompt_optional=True)
        check_interpolation_input(self.interpolate_pipe, video)
        with self._lock:
            out = self.interpolate_pipe(video.frames, prompt, fps=video.fps, **sampling.kwargs())
            return self._write(prompt or "interpolated", sampling.seed, out, [])

    def extend(self, video: Video, prompt: str, sampling: Sampling, past: int | None = None,
               new: int | None = None) -> Result:
        """`video` followed by `new` frames that continue its last `past` ones as `prompt` says."""
        self._check(prompt, sampling)
        notes = domain_warnings(self.components, prompt)
        with self._lock:
            out = self.extend_pipe(video.frames, prompt, fps=video.fps, num_past=past, num_new=new,
                                   **sampling.kwargs())
            note = extension_note(video, out)
            return self._write(prompt, sampling.seed, out, notes + ([note] if note else []))

    # Files ----------------------------------------------------------------------------------------------------
    def _write(self, stem: str, seed: int, video: VideoOutput, notes: list[str]) -> Result:
        """The video as mp4 and GIF in a new run folder (the oldest folders beyond `keep` are removed)."""
        note = weights_note(video.info)
        folder = self.outputs / f"run-{next(self._runs):05d}"
        name = f"{slug(stem)}-seed{seed}"
        mp4 = write_video(folder / f"{name}.mp4", video.frames, video.fps)
        gif = write_video(folder / f"{name}.gif", video.frames, video.fps)
        self._prune()
        t, h, w, _ = video.frames.shape
        return Result(mp4, gif, t, video.fps, w, h, notes + ([note] if note else []))

    def _prune(self) -> None:
        runs = sorted(p for p in self.outputs.glob("run-*") if p.is_dir())
        for old in runs[: max(0, len(runs) - self.keep)]:
            shutil.rmtree(old, ignore_errors=True)
