"""Long videos: chained extensions, one prompt per segment, in latent space, with drift mitigation.

Segment 1 is a text-to-video clip (first frame, then F; no interpolation yet) or the latents of a given
video. Each later segment is an extension: the last `num_past` latents of the video so far and that
segment's prompt give `num_new` new latents. The past frames are never decoded and re-encoded, so no
autoencoder round trip accumulates. At the end the whole low-fps video is interpolated in one pass (the
windows stitched as for any video) and decoded, so every seam is interpolated like the rest.

Drift mitigation (`anchor`):

* ``"first"``: every segment's new latents get, per latent channel, the mean and standard deviation of the
  first segment's latents (only the generated frames change). Colour and brightness drift shows up as slow
  shifts of these statistics from segment to segment; re-anchoring pulls them back before the next segment
  conditions on them, so errors cannot compound.
* ``"none"``: the segments as sampled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from emu_video.errors import UserError
from emu_video.pipelines.base import (
    Pipeline,
    Settings,
    VideoOutput,
    frames_to_tensor,
    tensor_to_frames,
)
from emu_video.pipelines.components import EmuVideoComponents
from emu_video.pipelines.extend import ExtendPipeline, resample_frames
from emu_video.pipelines.interpolate import InterpolatePipeline
from emu_video.pipelines.text_to_video import TextToVideoPipeline

ANCHORS = ("first", "none")
DEFAULT_ANCHOR = "first"

SegmentCallback = Callable[[int, int, str], None]  # (segment number from 1, segments, prompt)


def anchor_statistics(latents: torch.Tensor, reference: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """`latents` (B, C, T, h, w) shifted and scaled so that each channel has the mean and standard deviation it
    has in `reference` (B, C, T', h, w), over frames and positions."""
    dims = (2, 3, 4)
    x = latents.float()
    ref = reference.float()
    mean, std = x.mean(dims, keepdim=True), x.std(dims, keepdim=True)
    ref_mean, ref_std = ref.mean(dims, keepdim=True), ref.std(dims, keepdim=True)
    return ((x - mean) / (std + eps) * ref_std + ref_mean).to(latents.dtype)


@dataclass
class Chain:
    """Chained segments at the model's frame rate, before interpolation."""

    latents: torch.Tensor  # (1, C, T, h, w)
    bounds: list[tuple[int, int, str]]  # per segment: its own frames [start, end) and its prompt
    prompts: list[str]
    anchor: str
    num_past: int
    num_new: int
    settings: Settings
    known: np.ndarray | None = None  # the given video's frames at the model's size and frame rate


@dataclass
class Segment:
    prompt: str
    start: int  # first frame of the segment's own (new) frames in the output video
    end: int  # one past its last frame
    base_start: int  # the same at the model's low frame rate (before interpolation)
    base_end: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def check_anchor(anchor: str) -> str:
    if anchor not in ANCHORS:
        raise UserError(f"unknown anchor {anchor!r}; choose one of: {', '.join(ANCHORS)}")
    return anchor


def check_prompts(prompts: Sequence[str]) -> list[str]:
    prompts = list(prompts)
    if not prompts:
        raise UserError("give at least one prompt")
    for k, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise UserError(f"prompt {k + 1} is empty: say what happens in that segment")
    return prompts


class LongVideoPipeline(Pipeline):
    """One long video from a list of prompts (one per segment), from text or from a given video."""

    def __init__(self, components: EmuVideoComponents):
        super().__init__(components)
        self.text_to_video = TextToVideoPipeline(components)
        self.extend = ExtendPipeline(components)
        self.interpolate = InterpolatePipeline(components)

    def __call__(
        self,
        prompts: Sequence[str],
        video: np.ndarray | None = None,
        fps: float | None = None,
        first_image: np.ndarray | None = None,
        num_past: int | None = None,
        num_new: int | None = None,
        anchor: str = DEFAULT_ANCHOR,
        interpolate: bool = True,
        interpolation_steps: int | None = None,
        image_guidance: float | None = None,
        on_segment: SegmentCallback | None = None,
        **sampling,
    ) -> VideoOutput:
        """A video of one segment per prompt. Segment 1: `video` (frames at `fps`, kept as they are, so the
        prompts all describe extensions), else `first_image` animated with prompts[0], else a text-to-video
        clip of prompts[0]. `num_past` / `num_new`: frames each extension conditions on / adds (default: the
        extension weights' past frames, the rest of the model's clip). `interpolate`: raise the whole video to
        the interpolation model's frame rate at the end (when the folder has interpolation weights).
        `on_segment(k, n, prompt)` is called as segment k of n starts. `sampling`: see `Pipeline.prepare`;
        one generator draws every segment's noise, so a seed gives the same long video.
        `info["segments"]` says where each segment's own frames are in the output."""
        chain = self.chain(prompts, video=video, fps=fps, first_image=first_image, num_past=num_past,
                           num_new=num_new, anchor=anchor, image_guidance=image_guidance, on_segment=on_segment,
                           **sampling)
        return self.finish(chain, interpolate=interpolate, interpolation_steps=interpolation_steps)

    def chain(self, prompts: Sequence[str], video: np.ndarray | None = None, fps: float | None = None,
              first_image: np.ndarray | None = None, num_past: int | None = None, num_new: int | None = None,
              anchor: str = DEFAULT_ANCHOR, image_guidance: float | None = None,
              on_segment: SegmentCallback | None = None, **sampling) -> Chain:
        """The low-fps latents of every segment (see `__call__`), before interpolation and decoding."""
        c = self.components
        prompts = check_prompts(prompts)
        anchor = check_anchor(anchor)
        _, s = self.prepare(prompts[0], **sampling)
        num_past, num_new = self.extend.frame_counts(num_past, num_new)
        shared = {"generator": s.generator, "num_inference_steps": s.steps, "sampler": s.sampler,
                  "w_img": s.w_img, "w_txt": s.w_txt, "height": s.height, "width": s.width,
                  "callback": s.callback, "progress": s.progress}
        model_fps = float(c.defaults["fps"])
        extensions = prompts if video is not None else prompts[1:]
        known = None
        if video is not None:
            frames = resample_frames(np.asarray(video), float(fps or model_fps), model_fps)
            if len(frames) < num_past:
                raise UserError(f"the video has {len(frames)} frames at {model_fps:g} fps; extension conditions "
                                f"on the last {num_past}")
            latents = self.encode_frames(frames, s.height, s.width)
            known = tensor_to_frames(frames_to_tensor(frames, s.height, s.width))
            bounds = [(0, latents.shape[2], "")]
        else:
            if on_segment is not None:
                on_segment(1, len(prompts), prompts[0])
            if first_image is not None:
                first = self.text_to_video.image_to_video(first_image, prompts[0], decode=False, **shared)
            else:
                first = self._first_clip(prompts[0], image_guidance, shared)
            latents = first.latents
            bounds = [(0, latents.shape[2], prompts[0])]
            if latents.shape[2] < num_past:
                raise UserError(f"the first segment has {latents.shape[2]} frames; extension conditions on {num_past}")
        reference = latents
        done = len(prompts) - len(extensions)  # segments made before the first extension (0 or 1)
        for j, prompt in enumerate(extensions):
            if on_segment is not None:
                on_segment(done + j + 1, len(prompts), prompt)
            new = self.extend.extend_latents(latents[:, :, -num_past:], self.encode_prompt(prompt), num_new, s,
                                             label=f"extension {j + 1}/{len(extensions)}")
            if anchor == "first":
                new = anchor_statistics(new, reference)
            bounds.append((latents.shape[2], latents.shape[2] + num_new, prompt))
            latents = torch.cat([latents, new.to(latents.dtype)], dim=2)
        return Chain(latents, bounds, prompts, anchor, num_past, num_new, s, known)

    def finish(self, chain: Chain, interpolate: bool = True, interpolation_steps: int | None = None,
               segments: int | None = None) -> VideoOutput:
        """The video of `chain` (its first `segments` segments; default all): interpolated in one pass when
        asked (and the folder can), decoded."""
        c = self.components
        bounds = chain.bounds[:segments] if segments else chain.bounds
        latents = chain.latents[:, :, : bounds[-1][1]]
        s = chain.settings
        model_fps = float(c.defaults["fps"])
        out_latents, out_fps, where = latents, model_fps, list(range(latents.shape[2] + 1))
        if interpolate and c.has_layout("interpolation"):
            # one prompt for every window: the first segment's, which names the objects as they look
            out = self.interpolate(None, chain.prompts[0], latents=latents, fps=model_fps, decode=False,
                                   repeat_tail=True, num_inference_steps=interpolation_steps, generator=s.generator,
                                   sampler=s.sampler, w_img=s.w_img, w_txt=s.w_txt, callback=s.callback,
                                   progress=s.progress)
            out_latents, out_fps = out.latents, out.fps
            where = self.interpolate.layout().output_positions(latents.shape[2])
        frames = self.decode(out_latents)
        if chain.known is not None and out_fps == model_fps:  # the given video as it was, not re-decoded
            frames[: len(chain.known)] = chain.known[: len(frames)]
        segs = [Segment(p, where[a] if a else 0, where[b] if b < latents.shape[2] else frames.shape[0], a, b)
                for a, b, p in bounds]
        info = {"layout": "extension", "weights": c.weights_for("extension"), "anchor": chain.anchor,
                "num_past": chain.num_past, "num_new": chain.num_new, "base_frames": latents.shape[2],
                "base_fps": model_fps, "segments": [seg.to_dict() for seg in segs]}
        return VideoOutput(frames=frames, fps=out_fps, latents=latents, info=info)

    def _first_clip(self, prompt: str, image_guidance: float | None, shared: dict) -> VideoOutput:
        t2v = self.text_to_video
        image = t2v.text_to_image(prompt, guidance_scale=image_guidance, decode=False,
                                  **{k: shared[k] for k in ("generator", "num_inference_steps", "sampler",
                                                            "callback", "progress", "height", "width")})
        return t2v.image_to_video(None, prompt, image_latents=image.latents, decode=False, **shared)
