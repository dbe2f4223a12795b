"""CFG truncation and step caching in the pipelines: off at their defaults (bit-identical), and when on, the
guided trajectory that a hand-written DDIM loop over the guidance formulas gives."""

import numpy as np
import pytest
import torch

from emu_video.diffusion.conditioning import unet_input
from emu_video.diffusion.ddim import DDIMSampler
from emu_video.diffusion.layouts import make_layout
from emu_video.errors import UserError
from emu_video.pipelines import ImageToVideoPipeline, TextToVideoPipeline
from emu_video.pipelines.base import guided_steps, randn

PROMPT = "a blue square falls"


def _image_latents(seed=0):
    return torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(seed)).repeat(1, 1, 8, 8)


def _video(components, **levers):
    pipe = ImageToVideoPipeline(components)
    out = pipe(None, PROMPT, image_latents=_image_latents(), num_frames=5, seed=7, num_inference_steps=4,
               w_img=2.0, w_txt=7.5, decode=False, progress=False, **levers)
    return out.latents


def _hand_loop(components, guided: int, late: str):
    """DDIM over the two-condition formula for the first `guided` steps, then the late formula."""
    c = components
    g = torch.Generator("cpu").manual_seed(7)
    layout = make_layout("first_frame")
    text = c.encode_prompts([PROMPT])
    null = c.null_embeddings()
    with c.using(layout) as schedule, torch.no_grad():
        cond, mask = layout.condition(_image_latents().unsqueeze(2), 5)
        x = randn(cond.shape, g, c.device, c.dtype)
        sampler = DDIMSampler(schedule, 4)
        for i, t in enumerate(sampler.timesteps.tolist()):
            tt = torch.tensor([t])
            x_full = c.unet(unet_input(x, cond, mask), tt, text)
            x_img = c.unet(unet_input(x, cond, mask), tt, null)
            if i < guided:
                x_null = c.unet(unet_input(x, torch.zeros_like(cond), torch.zeros_like(mask)), tt, null)
                out = x_null + 2.0 * (x_img - x_null) + 7.5 * (x_full - x_img)
            else:
                out = x_full if late == "cond" else x_img + 7.5 * (x_full - x_img)
            x = sampler.step(out, t, x)
    return x


def test_levers_at_their_defaults_change_nothing(components):
    base = _video(components)
    assert torch.equal(_video(components, cfg_truncation=1.0, cfg_truncation_keep="text", cache_interval=1), base)


@pytest.mark.parametrize("keep", ["cond", "text"])
def test_cfg_truncation_follows_the_formulas(components, keep):
    got = _video(components, cfg_truncation=0.5, cfg_truncation_keep=keep)
    torch.testing.assert_close(got, _hand_loop(components, 2, keep), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(_video(components), _hand_loop(components, 4, keep), rtol=1e-4, atol=1e-4)
    assert (got - _video(components)).abs().max() > 1e-3  # truncation did change the video


def test_cfg_truncation_runs_fewer_passes(components):
    batches = []
    hook = components.unet.register_forward_hook(lambda m, args, out: batches.append(args[0].shape[0]))
    try:
        _video(components, cfg_truncation=0.5)
        _video(components, cfg_truncation=0.75, cfg_truncation_keep="text")
    finally:
        hook.remove()
    assert batches == [3, 3, 1, 1] + [3, 3, 3, 2]


def test_guided_steps_rounds_half_up():
    assert [guided_steps(10, f) for f in (1.0, 0.6, 0.55, 0.0)] == [10, 6, 6, 0]
    assert [guided_steps(5, f) for f in (0.6, 0.5, 0.3)] == [3, 3, 2]


def test_step_caching_runs_the_deep_levels_every_interval(components):
    deep, last = [], []
    hooks = [components.unet.mid_block.register_forward_hook(lambda *a: deep.append(1)),
             components.unet.up_blocks[-1].register_forward_hook(lambda *a: last.append(1))]
    try:
        cached = _video(components, cache_interval=2)
    finally:
        for h in hooks:
            h.remove()
    assert len(last) == 4 and len(deep) == 2  # full passes at steps 0 and 2, shallow ones at 1 and 3
    base = _video(components)
    assert torch.isfinite(cached).all() and 0 < (cached - base).abs().max() < 10 * base.abs().max()


def test_text_to_video_hands_the_levers_to_every_stage(components):
    pipe = TextToVideoPipeline(components)
    kw = dict(seed=1, num_inference_steps=2, interpolation_steps=2, num_frames=8, progress=False)
    base = pipe(PROMPT, **kw)
    same = pipe(PROMPT, cfg_truncation=1.0, cache_interval=1, **kw)
    assert np.array_equal(base.frames, same.frames)
    batches = []
    hook = components.unet.register_forward_hook(lambda m, args, out: batches.append(args[0].shape[0]))
    try:
        pipe(PROMPT, cfg_truncation=0.5, **kw)
    finally:
        hook.remove()
    # first frame 2 -> 1 pass, video 3 -> 1, interpolation 3 -> 1 (one window)
    assert batches == [2, 1, 3, 1, 3, 1]


@pytest.mark.parametrize("kwargs", [{"cfg_truncation": 1.5}, {"cfg_truncation": float("nan")},
                                    {"cfg_truncation_keep": "image"}, {"cache_interval": 0},
                                    {"cache_interval": 2.5}])
def test_bad_lever_values_are_refused(components, kwargs):
    with pytest.raises(UserError):
        _video(components, **kwargs)
