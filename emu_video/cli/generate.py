"""`emu-video generate | animate | interpolate | extend`: the pipelines from the command line."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import time
from pathlib import Path

from emu_video.cli.lora import add_lora_arguments, lora_specs
from emu_video.errors import UserError


def _common(p: argparse.ArgumentParser, guidance: bool = True, one_video: bool = True) -> None:
    """The options every generating command shares; `one_video=False` (the evaluation protocols, which write a
    folder of videos) leaves out --out FILE and --gif and makes --seed the first of the plan's seeds."""
    p.add_argument("--model", metavar="DIR", default=None,
                   help="model folder (default: the model shipped with the package)")
    if one_video:
        p.add_argument("--out", metavar="FILE", default=None,
                       help="output video (.mp4 H.264, or .gif); default: a name made from the prompt and seed")
        p.add_argument("--seed", type=int, default=0,
                       help="random seed; same seed and arguments give the same video (default 0)")
    else:
        p.add_argument("--seed", type=int, default=0,
                       help="first seed: the plan's i-th video uses SEED+i, so a rerun gives the same videos (default 0)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps per stage (default: the model's)")
    p.add_argument("--sampler", default=None, choices=sampler_names(),
                   help="the sampler: ddim (the paper's), dpmpp-2m (DPM-Solver++ 2M: fewer steps for the same "
                        "quality), euler or euler-ancestral (default: the model's, ddim)")
    if guidance:
        from emu_video.diffusion.guidance import PAPER_W_IMG, PAPER_W_TXT

        p.add_argument("--w-img", type=float, default=None,
                       help=f"image guidance weight w_img (default: the model's, {PAPER_W_IMG:g} in the paper)")
        p.add_argument("--w-txt", type=float, default=None,
                       help=f"text guidance weight w_txt (default: the model's, {PAPER_W_TXT:g} in the paper)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: the processors that other work leaves free, measured while "
                        "the model loads and after every sampler step; OMP_NUM_THREADS also sets it)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="weights and activations dtype (default float32)")
    p.add_argument("--optimize", action="store_true",
                   help="switch on the U-Net's fast paths: fused projections and channels-last frames, and on a GPU "
                        "compiled blocks, CUDA graphs, Triton kernels and a compiled autoencoder (the first video "
                        "compiles for a while; worth it for big "
                        "models and many steps; same output within rounding)")
    p.add_argument("--tune-kernels", action="store_true",
                   help="with --optimize on a GPU: also tune the compiled Triton kernels (about 1%% faster U-Net "
                        "steps on the paper-size model; the first video then compiles for a very long time, over "
                        "20 minutes at 512px on one H100)")
    speed = p.add_argument_group("speed levers (each off by default unless the model folder's defaults set it)")
    speed.add_argument("--cfg-truncation", type=float, default=None, metavar="F",
                       help="CFG truncation: only the first F (0 to 1) of each stage's steps run every guidance pass; "
                            "the rest run fewer (see --cfg-truncation-keep). 0.6: the last 40%% of the steps. "
                            "1 (default): off")
    speed.add_argument("--cfg-truncation-keep", default=None, choices=["cond", "text"],
                       help="what the truncated steps keep: cond (the fully conditioned pass alone: 1 U-Net pass "
                            "instead of 3) or text (text guidance without the unconditional pass: 2 instead of 3)")
    speed.add_argument("--cache-interval", type=int, default=None, metavar="N",
                       help="step caching: a full U-Net pass every N steps; the steps between reuse its deep "
                            "features and run only the first level (1, the default: off)")
    speed.add_argument("--quantize", default="none", choices=["none", "int8"],
                       help="int8: dynamic int8 quantisation of the U-Net's spatial linear layers (CPU only)")
    add_lora_arguments(p)
    if one_video:
        p.add_argument("--gif", action="store_true", help="also write a GIF next to the mp4")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def sampler_names() -> list[str]:
    from emu_video.diffusion.samplers import SAMPLERS

    return list(SAMPLERS)


def register(sub) -> None:
    g = sub.add_parser(
        "generate", help="text -> video (first frame, then video, then interpolation to 16 fps)",
        description="Generate a video from a prompt with the factorized pipeline: the U-Net without temporal "
                    "layers draws the first frame, the U-Net with them animates it (4 fps), and the interpolation "
                    "model raises it to 16 fps.",
    )
    g.add_argument("prompt", help='what the video shows, e.g. "a yellow triangle rises on a black background"')
    _common(g)
    add_text_to_video_options(g)
    g.add_argument("--save-first-frame", metavar="PNG", nargs="?", const="", default=None,
                   help="also save the generated first frame (default name: the video's with .png)")
    g.add_argument("--then", metavar="PROMPT", action="append", default=[],
                   help="a long video: after the first clip, one more segment (an extension of the video so far) "
                        "for this prompt; repeat for more segments, e.g. --then \"a red circle moves left\" --then "
                        "\"a red circle stays still\". The whole video is interpolated at the end.")
    _long_video_arguments(g)
    g.set_defaults(func=run_generate)

    a = sub.add_parser("animate", help="image + prompt -> video (or two images: first and last frame)",
                       description="Animate an image (PNG/JPEG/...) with a prompt using first-frame conditioning; with "
                                   "--last, make the video between two images (the keyframes layout).")
    a.add_argument("image", help="the image to animate; it is centre-cropped and resized to the model's size")
    a.add_argument("prompt")
    a.add_argument("--last", metavar="IMAGE", default=None,
                   help="the video's last frame: generate the frames between the two images (keyframes layout; "
                        "uses the model folder's keyframes weights, else the image-to-video model's)")
    _common(a)
    a.add_argument("--frames", type=int, default=None, help="frames to generate (default: the model's)")
    a.add_argument("--interpolate", action="store_true", help="also run the interpolation model (to 16 fps)")
    a.set_defaults(func=run_animate)

    i = sub.add_parser("interpolate", help="video at 4 fps -> 4x the frame rate",
                       description="Interpolate a low-frame-rate video (8k frames: 8 -> 37, 16 -> 65) to 4x its fps "
                                   "by masked zero-interleaving.")
    i.add_argument("video", help="mp4/webm/gif with a multiple of 8 frames")
    i.add_argument("--prompt", default="", help="what the video shows (helps the text guidance)")
    _common(i)
    i.add_argument("--noise-t", type=int, default=None, help="noise augmentation of the conditioning frames (default 100)")
    i.set_defaults(func=run_interpolate, prompt_optional=True)

    e = sub.add_parser("extend", help="video + future prompt(s) -> the video continued, once or N times",
                       description="Continue a video: condition on its last frames and a new prompt, generate the "
                                   "next ones. With several prompts (or --times N) the extensions chain: each "
                                   "segment continues the video so far. Uses the model folder's extension weights "
                                   "(else the image-to-video model's, with a note).")
    e.add_argument("video")
    e.add_argument("prompts", nargs="+", metavar="prompt",
                   help="what happens next; several prompts: one per segment, in order")
    _common(e)
    e.add_argument("--times", type=int, default=None, metavar="N",
                   help="extend N times with the one prompt given (with several prompts: their count, the default)")
    e.add_argument("--past", type=int, default=None,
                   help="frames of the video to condition on (default: those the extension weights were trained "
                        "with, else half the model's clip)")
    e.add_argument("--new", type=int, default=None, help="frames each extension adds (default: the rest of the model's clip)")
    e.add_argument("--interpolate", action="store_true",
                   help="also run the interpolation model over the whole result (to 16 fps)")
    _long_video_arguments(e)
    e.set_defaults(func=run_extend)


def add_text_to_video_options(g: argparse.ArgumentParser) -> None:
    """The text-to-video pipeline's own options (shared by `generate` and `protocol`)."""
    g.add_argument("--image-guidance", type=float, default=None,
                   help="guidance scale of the first frame (default: the model's, 7.5 unless it sets another)")
    g.add_argument("--interp-steps", type=int, default=None, help="sampler steps of the interpolation model (default: the model's "
                   "interpolation steps, whatever --steps says)")
    g.add_argument("--frames", type=int, default=None, help="frames of the base video before interpolation (default: the model's)")
    g.add_argument("--no-interpolate", action="store_true", help="stop at the base video (4 fps)")
    g.add_argument("--direct", action="store_true",
                   help="the paper's 'direct' baseline: the video straight from the text, no first frame (uses the "
                        "model folder's direct weights; a folder without them samples it with the image-to-video "
                        "model, which learned the image-free case through condition dropout)")


def text_to_video_options(args) -> dict:
    """`TextToVideoPipeline` arguments from the options of `add_text_to_video_options`."""
    return {"interpolation_steps": args.interp_steps, "image_guidance": args.image_guidance,
            "num_frames": args.frames, "interpolate": not args.no_interpolate, "direct": args.direct}


def _long_video_arguments(p: argparse.ArgumentParser) -> None:
    from emu_video.pipelines.long_video import ANCHORS, DEFAULT_ANCHOR

    p.add_argument("--anchor", choices=ANCHORS, default=DEFAULT_ANCHOR,
                   help="colour drift mitigation of chained segments: first = give every new segment's latents the "
                        "per-channel mean and spread of the first segment's; none = as sampled "
                        f"(default {DEFAULT_ANCHOR})")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "video"


def _out_path(args, stem: str) -> Path:
    """The output file, checked before any model runs: its suffix, and a folder we can write it into."""
    out = Path(args.out) if args.out else Path(f"{slug(stem)}-seed{args.seed}.mp4")
    if out.suffix.lower() not in (".mp4", ".gif", ".mkv", ".mov"):
        raise UserError(f"--out must end in .mp4 or .gif, got {out.name}")
    if out.exists() and out.is_dir():
        raise UserError(f"--out is a folder: {out}")
    folder = out.resolve().parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {out}: {existing} is not a writable folder")
    return out


def check_args(args) -> None:
    """Everything about the arguments that can be wrong, refused before the model loads."""
    for name in ("steps", "interp_steps", "threads"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name in ("w_img", "w_txt", "image_guidance"):
        value = getattr(args, name, None)
        if value is not None and not math.isfinite(value):
            raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    truncation = getattr(args, "cfg_truncation", None)
    if truncation is not None and not (math.isfinite(truncation) and 0.0 <= truncation <= 1.0):
        raise UserError(f"--cfg-truncation is a share of the steps, from 0 to 1; got {truncation}")
    interval = getattr(args, "cache_interval", None)
    if interval is not None and interval < 1:
        raise UserError(f"--cache-interval must be at least 1 (1: no caching), got {interval}")
    if getattr(args, "quantize", "none") != "none" and str(getattr(args, "device", "cpu")) != "cpu":
        raise UserError("--quantize int8 runs on the CPU only (use --device cpu)")
    if getattr(args, "quantize", "none") != "none" and getattr(args, "dtype", "float32") != "float32":
        raise UserError("--quantize int8 starts from float32 weights (leave --dtype at float32)")
    frames = getattr(args, "frames", None)
    if frames is not None and frames < 2:
        raise UserError(f"--frames must be at least 2, got {frames}")
    for name in ("past", "new", "times"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UserError(f"--{name} must be at least 1, got {value}")
    prompt = getattr(args, "prompt", None)
    if prompt is not None and not getattr(args, "prompt_optional", False) and not prompt.strip():
        raise UserError("the prompt is empty: say what the video shows")
    segments = getattr(args, "prompts", None)  # extend's prompts (protocol's --prompts is a file)
    if not isinstance(segments, list):
        segments = [prompt, *args.then] if getattr(args, "then", None) else []
    for k, p in enumerate(segments):
        if not p.strip():
            raise UserError(f"prompt {k + 1} is empty: say what happens in that segment")
    try:
        import torch

        if args.device is not None:
            torch.device(args.device)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {args.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None


def _sampling(args) -> dict:
    """The pipeline arguments every generating command shares (after checking every argument)."""
    check_args(args)
    args.started = time.perf_counter()
    args.governor = None
    if args.device == "cpu":  # threads chosen by how busy other work keeps the processors, again at every step
        from emu_video.cpu_threads import ThreadGovernor

        args.governor = ThreadGovernor(args.threads, quiet=args.quiet)
    return {"seed": args.seed, "num_inference_steps": args.steps, "sampler": args.sampler, "w_img": args.w_img,
            "w_txt": args.w_txt, "progress": not args.quiet, "callback": args.governor,
            "cfg_truncation": args.cfg_truncation, "cfg_truncation_keep": args.cfg_truncation_keep,
            "cache_interval": args.cache_interval}


SHAPES_WORLD_NOTE = "warning: this model knows only Shapes World (coloured shapes that move; docs/shapes.md)"


def domain_warnings(components, prompt: str, images=()) -> list[str]:
    """Warnings for a prompt (or an image to animate) outside what a narrow model (its model_index.json
    `domain`) knows; none for a model without a domain."""
    if components.index.domain != "shapes_world":
        return []
    from emu_video.shapes.grammar import parse_prompt

    warnings = []
    try:
        parse_prompt(prompt)
    except UserError as exc:
        warnings.append(f"{SHAPES_WORLD_NOTE}, so the video will show shapes: {exc}")
    for image in images:
        share = flat_background_share(image)
        if share < 0.5:  # a Shapes World frame is mostly one flat background colour
            warnings.append(f"{SHAPES_WORLD_NOTE}: this image is not a Shapes World frame (only {share:.0%} of it is "
                            "one flat background colour), and the model will redraw it as shapes")
    return warnings


def _check_domain(components, prompt: str, images=()) -> None:
    for warning in domain_warnings(components, prompt, images):
        print(warning)


def flat_background_share(image) -> float:
    """The share of pixels within 12 levels (per channel) of the image's median colour."""
    import numpy as np

    pixels = np.asarray(image, dtype=np.int16).reshape(-1, 3)
    median = np.median(pixels, axis=0)
    return float((np.abs(pixels - median).max(axis=1) <= 12).mean())


def weights_note(info: dict) -> str | None:
    """A note when a layout was sampled with another layout's weights."""
    if info.get("layout") and info.get("weights") and info["weights"] != info["layout"]:
        return f"note: this model folder has no {info['layout']} weights; sampled with its {info['weights']} weights"
    return None


def _note_weights(info: dict) -> None:
    note = weights_note(info)
    if note:
        print(note)


def load_components(args):
    from emu_video.pipelines.components import EmuVideoComponents

    if args.tune_kernels and not args.optimize:
        raise UserError("--tune-kernels tunes the compiled kernels of --optimize; add --optimize")
    device = args.device
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device is available here (use --device cpu)")
    lora = lora_specs(args.lora, args.lora_scale)
    governor = getattr(args, "governor", None)
    with governor.loading() if governor is not None else contextlib.nullcontext():
        components = EmuVideoComponents.from_pretrained(args.model, device=device, dtype=args.dtype, lora=lora)
        components.quantize(getattr(args, "quantize", "none"))
    if governor is not None:
        governor.apply()
    if args.optimize:
        components.optimize_for_inference(tune_kernels=args.tune_kernels)
    return components


def _write(args, out: Path, frames, fps: float) -> None:
    from emu_video.io.video import write_video

    write_video(out, frames, fps)
    print(f"wrote {out.resolve()} ({len(frames)} frames, {fps:g} fps, {frames.shape[2]}x{frames.shape[1]})")
    if args.gif and out.suffix.lower() != ".gif":
        gif = out.with_suffix(".gif")
        write_video(gif, frames, fps)
        print(f"wrote {gif.resolve()}")


def _done(args) -> int:
    print(f"done in {time.perf_counter() - args.started:.1f} s")
    return 0


def run_generate(args) -> int:
    from emu_video.io.video import write_image
    from emu_video.pipelines import TextToVideoPipeline

    kwargs = _sampling(args)
    out = _out_path(args, args.prompt)
    if args.then:
        return run_long_generate(args, kwargs, out)
    components = load_components(args)
    _check_domain(components, args.prompt)
    video = TextToVideoPipeline(components)(
        args.prompt, return_first_frame=args.save_first_frame is not None and not args.direct,
        **text_to_video_options(args), **kwargs,
    )
    _note_weights(video.info)
    _write(args, out, video.frames, video.fps)
    if args.save_first_frame is not None:
        if video.first_frame is None:
            print("no first frame to save: --direct makes the video without one")
        else:
            png = Path(args.save_first_frame) if args.save_first_frame else out.with_suffix(".png")
            write_image(png, video.first_frame)
            print(f"wrote {png} (first frame)")
    return _done(args)


def run_animate(args) -> int:
    from emu_video.io.video import read_image
    from emu_video.pipelines import ImageToVideoPipeline, InterpolatePipeline

    kwargs = _sampling(args)
    image = read_image(args.image)
    last = read_image(args.last) if args.last else None
    out = _out_path(args, Path(args.image).stem + "-" + args.prompt)
    comps = load_components(args)
    _check_domain(comps, args.prompt, [image] if last is None else [image, last])
    video = ImageToVideoPipeline(comps)(image, args.prompt, last_image=last, num_frames=args.frames,
                                        decode=not args.interpolate, **kwargs)
    _note_weights(video.info)
    if args.interpolate:
        interpolate = InterpolatePipeline(comps)
        interpolate.check_length(video.latents.shape[2])
        video = interpolate(None, args.prompt, latents=video.latents, fps=video.fps, **kwargs)
    _write(args, out, video.frames, video.fps)
    return _done(args)


def run_interpolate(args) -> int:
    from emu_video.io.video import read_video
    from emu_video.pipelines import InterpolatePipeline

    kwargs = _sampling(args)
    src = read_video(args.video)
    out = _out_path(args, Path(args.video).stem + "-interpolated")
    pipe = InterpolatePipeline(load_components(args))
    check_interpolation_input(pipe, src)
    video = pipe(src.frames, args.prompt, fps=src.fps, noise_t=args.noise_t, **kwargs)
    _write(args, out, video.frames, video.fps)
    return _done(args)


def check_interpolation_input(pipe, src) -> None:
    """Refuse a video the interpolation model cannot take (not 8k frames), saying why when it looks
    interpolated already."""
    try:
        pipe.check_length(src.num_frames)
    except UserError as exc:
        if src.fps > 8:  # e.g. generate's 65 frames at 16 fps: interpolated already
            raise UserError(f"{exc}. This video is at {src.fps:g} fps, so probably interpolated already: make a "
                            "4 fps one with `emu-video generate --no-interpolate` and interpolate that") from None
        raise


def extension_note(src, video) -> str | None:
    """Say how the input was resampled when the model's frame rate is not the video's."""
    info = video.info
    if "segments" in info:  # a chain (LongVideoPipeline): the given video is its first segment
        kept, fps = info["segments"][0]["base_end"], info["base_fps"]
        new = info["base_frames"] - kept
    else:  # one extension (ExtendPipeline)
        new, fps = info["num_new"], video.fps
        kept = len(video.frames) - new
    if abs(src.fps - fps) > 1e-6:
        return (f"note: the model works at {fps:g} fps: the {src.num_frames} frames at {src.fps:g} fps became "
                f"{kept} at {fps:g} fps, followed by {new} new ones")
    return None


def segment_prompts(prompts: list[str], times: int | None) -> list[str]:
    """One prompt per segment: the prompts as given, or the one prompt `times` times."""
    if times is None:
        return list(prompts)
    if len(prompts) == 1:
        return list(prompts) * times
    if times != len(prompts):
        raise UserError(f"--times {times} with {len(prompts)} prompts: give one prompt to repeat, or one per segment")
    return list(prompts)


def _progress(args):
    if args.quiet:
        return None
    return lambda k, n, prompt: print(f"segment {k}/{n}: {prompt}", flush=True)


def _segments_note(info: dict, fps: float) -> str:
    parts = [f"{seg['start'] / fps:.1f}-{seg['end'] / fps:.1f} s" for seg in info["segments"]]
    return f"segments ({info['num_past']} past + {info['num_new']} new frames each, anchor {info['anchor']}): " + \
        ", ".join(parts)


def run_long_generate(args, kwargs: dict, out: Path) -> int:
    from emu_video.pipelines import LongVideoPipeline

    if args.direct:
        raise UserError("--then chains extensions of a first clip; it does not go with --direct")
    if args.frames is not None or args.save_first_frame is not None:
        raise UserError("with --then every segment is the model's clip; --frames and --save-first-frame are for a "
                        "single clip")
    prompts = [args.prompt, *args.then]
    components = load_components(args)
    for prompt in prompts:
        _check_domain(components, prompt)
    video = LongVideoPipeline(components)(
        prompts, interpolate=not args.no_interpolate, interpolation_steps=args.interp_steps,
        image_guidance=args.image_guidance, anchor=args.anchor, on_segment=_progress(args), **kwargs)
    _note_weights(video.info)
    print(_segments_note(video.info, video.fps))
    _write(args, out, video.frames, video.fps)
    return _done(args)


def run_extend(args) -> int:
    from emu_video.io.video import read_video
    from emu_video.pipelines import LongVideoPipeline

    kwargs = _sampling(args)
    prompts = segment_prompts(args.prompts, args.times)
    src = read_video(args.video)
    out = _out_path(args, Path(args.video).stem + "-" + prompts[0])
    components = load_components(args)
    for prompt in prompts:
        _check_domain(components, prompt)
    video = LongVideoPipeline(components)(
        prompts, video=src.frames, fps=src.fps, num_past=args.past, num_new=args.new, anchor=args.anchor,
        interpolate=args.interpolate, on_segment=_progress(args) if len(prompts) > 1 else None, **kwargs)
    _note_weights(video.info)
    note = extension_note(src, video)
    if note:
        print(note)
    if len(prompts) > 1:
        print(_segments_note(video.info, video.fps))
    _write(args, out, video.frames, video.fps)
    return _done(args)
