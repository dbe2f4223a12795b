"""Every pipeline end to end on a tiny random model: shapes, frame counts, determinism, guidance."""

import numpy as np
import pytest
import torch

from emu_video.diffusion import two_condition_guidance
from emu_video.diffusion.conditioning import place_frames, unet_input
from emu_video.diffusion.guidance import ClassifierFreeGuidance, TwoConditionGuidance
from emu_video.errors import UserError
from emu_video.pipelines import (
    ExtendPipeline,
    ImageToVideoPipeline,
    InterpolatePipeline,
    TextToImagePipeline,
    TextToVideoPipeline,
)
from emu_video.pipelines.base import ConditionedUNet


def _guided(components, text, cond=None, mask=None, w_img=2.0, w_txt=7.5, use_temporal=True):
    """The guided model output the pipelines denoise with."""
    model = ConditionedUNet(components, text, cond, mask, use_temporal=use_temporal)
    guidance = TwoConditionGuidance(w_img, w_txt) if cond is not None else ClassifierFreeGuidance(w_txt)
    return guidance.denoiser(model)


def _image(seed=0, size=24):
    return np.random.default_rng(seed).integers(0, 256, (size, size + 8, 3), dtype=np.uint8)


def test_text_to_image_shape_determinism_and_callback(components):
    pipe = TextToImagePipeline(components)
    calls = []
    a = pipe("a red circle", seed=3, progress=False, callback=lambda i, t, x: calls.append(int(t)))
    b = pipe("a red circle", seed=3, progress=False)
    c = pipe("a red circle", seed=4, progress=False)
    assert a.image.shape == (16, 16, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, c.image)
    assert len(calls) == 2 and calls[0] > calls[1]  # trailing DDIM: descending timesteps


def test_image_to_video_frames(components):
    out = ImageToVideoPipeline(components)(_image(), "it moves", seed=0, num_frames=6, progress=False)
    assert out.frames.shape == (6, 16, 16, 3) and out.fps == 4.0
    again = ImageToVideoPipeline(components)(_image(), "it moves", seed=0, num_frames=6, progress=False)
    assert np.array_equal(out.frames, again.frames)


def _three_passes(components, x, t, text, cond, mask):
    null = components.null_embeddings()
    unet = components.unet
    with torch.no_grad():
        x_null = unet(unet_input(x, torch.zeros_like(cond), torch.zeros_like(mask)), t, null)
        x_img = unet(unet_input(x, cond, mask), t, null)
        x_full = unet(unet_input(x, cond, mask), t, text)
    return x_null, x_img, x_full


def test_batched_two_condition_guidance_equals_the_formula(components):
    torch.manual_seed(0)
    x = torch.randn(1, 4, 5, 8, 8)
    cond, mask = place_frames(torch.randn(1, 4, 1, 8, 8), 5, [0])
    text = components.encode_prompts(["a blue square falls"])
    t = torch.tensor(500)
    x_null, x_img, x_full = _three_passes(components, x, t, text, cond, mask)
    with torch.no_grad():
        guided = _guided(components, text, cond, mask, w_img=2.0, w_txt=7.5)(x, t)
        ones = _guided(components, text, cond, mask, w_img=1.0, w_txt=1.0)(x, t)
    expected = x_null + 2.0 * (x_img - x_null) + 7.5 * (x_full - x_img)
    # The batched forward and the three separate ones differ by float32 rounding (~1e-6, depending on the CPU's
    # kernels), which the combination's coefficients (|1 - 2| + |2 - 7.5| + 7.5 = 14) amplify.
    torch.testing.assert_close(guided, expected, rtol=1e-4, atol=5e-5)
    torch.testing.assert_close(ones, x_full, rtol=1e-5, atol=1e-6)  # all scales 1 = fully conditioned
    torch.testing.assert_close(two_condition_guidance(x_null, x_img, x_full, 1.0, 1.0), x_full)
    assert (x_null - x_full).abs().max() > 1e-4  # the conditions matter, so the checks above mean something


def test_one_condition_guidance_at_scale_one_is_the_text_prediction(components):
    x = torch.randn(1, 4, 8, 8)
    text = components.encode_prompts(["a ball"])
    with torch.no_grad():
        plain = components.unet(x, torch.tensor([10]), text, use_temporal=False)
        one = _guided(components, text, w_txt=1.0, use_temporal=False)(x, torch.tensor(10))
        seven = _guided(components, text, w_txt=7.5, use_temporal=False)(x, torch.tensor(10))
        uncond = components.unet(x, torch.tensor([10]), components.null_embeddings(), use_temporal=False)
    torch.testing.assert_close(one, plain)
    torch.testing.assert_close(seven, uncond + 7.5 * (plain - uncond), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_in,n_out", [(8, 37), (16, 65)])
def test_interpolation_frame_counts(components, n_in, n_out):
    frames = np.stack([_image(i) for i in range(n_in)])
    out = InterpolatePipeline(components)(frames, "a ball", fps=4, seed=0, progress=False)
    assert out.frames.shape[0] == n_out and out.fps == 16.0
    assert out.info["windows"] == n_in // 8


def test_interpolation_rejects_lengths_it_cannot_take(components):
    with pytest.raises(UserError, match="multiple of 8"):
        InterpolatePipeline(components)(np.stack([_image(i) for i in range(10)]), "x", progress=False)


def test_interpolation_uses_its_own_temporal_weights_and_restores_the_video_ones(components):
    before = {k: v.clone() for k, v in components.unet.state_dict().items() if "temporal_" in k}
    seen = []
    pipe = InterpolatePipeline(components)

    def spy(i, t, x):
        seen.append(components.unet.down_blocks[0].resnets[0].temporal_conv1.conv.weight.clone())

    pipe(np.stack([_image(i) for i in range(8)]), "x", seed=0, progress=False, callback=spy)
    key = "down_blocks.0.resnets.0.temporal_conv1.conv.weight"
    assert not torch.equal(seen[0], before[key])
    after = components.unet.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_extend_appends_new_frames(components):
    frames = np.stack([_image(i) for i in range(12)])
    out = ExtendPipeline(components)(frames, "then it stops", fps=4, num_past=4, num_new=4, seed=0, progress=False)
    assert out.frames.shape == (16, 16, 16, 3) and out.info["num_new"] == 4


def test_text_to_video_full_chain(components):
    pipe = TextToVideoPipeline(components)
    a = pipe("a green ball rises", seed=7, num_frames=16, return_first_frame=True, progress=False)
    assert a.frames.shape == (65, 16, 16, 3) and a.fps == 16.0
    assert a.first_frame.shape == (16, 16, 3)
    b = pipe("a green ball rises", seed=7, num_frames=16, progress=False)
    assert np.array_equal(a.frames, b.frames)
    base = pipe("a green ball rises", seed=7, num_frames=8, interpolate=False, progress=False)
    assert base.frames.shape[0] == 8 and base.fps == 4.0


def test_text_to_video_hands_over_the_first_frame_before_the_video(components):
    events = []
    out = TextToVideoPipeline(components)(
        "a green ball rises", seed=7, num_frames=8, interpolate=False, return_first_frame=True, progress=False,
        on_first_frame=lambda image: events.append(("first frame", image.copy())),
        callback=lambda i, t, x: events.append(("step", x.ndim)),
    )
    kinds = [e[0] for e in events]
    assert kinds.count("first frame") == 1
    first = kinds.index("first frame")
    # after every text-to-image step (4-d latents), before every video step (5-d latents)
    assert all(e == ("step", 4) for e in events[:first]) and len(events[:first]) == 2
    assert all(e == ("step", 5) for e in events[first + 1:]) and len(events[first + 1:]) == 2
    assert np.array_equal(events[first][1], out.first_frame)


def test_bad_arguments(components):
    with pytest.raises(UserError, match="steps"):
        TextToImagePipeline(components)("x", num_inference_steps=0, progress=False)
    with pytest.raises(UserError, match="RGB"):
        ImageToVideoPipeline(components)(np.zeros((16, 16)), "x", progress=False)
    with pytest.raises(UserError, match="too small"):
        ImageToVideoPipeline(components)(np.zeros((4, 4, 3), np.uint8), "x", progress=False)
