"""Conditioning layouts: where each puts its known frames, how a training clip becomes the U-Net input, the
registry that stage kinds and pipelines read, and option checking."""

import pytest
import torch

from emu_video.diffusion import ClassifierFreeGuidance, TwoConditionGuidance, add_noise
from emu_video.diffusion.conditioning import unet_input
from emu_video.diffusion.layouts import LAYOUTS, layout_class, layout_names, make_layout
from emu_video.diffusion.schedules import NoiseSchedule
from emu_video.errors import UserError


def _index_copy_condition(known, num_frames, positions):
    """The conditioning channels written out with index_copy_: the reference for every layout."""
    b, c, k, h, w = known.shape
    cond = torch.zeros(b, c, num_frames, h, w)
    mask = torch.zeros(b, 1, num_frames, h, w)
    if positions:
        idx = torch.tensor(positions)
        cond.index_copy_(2, idx, known)
        mask.index_copy_(2, idx, torch.ones(b, 1, k, h, w))
    return cond, mask


@pytest.mark.parametrize("name, num_frames, positions", [
    ("first_frame", 16, [0]),
    ("keyframes", 16, [0, 15]),
    ("keyframes", 2, [0, 1]),
    ("extension", 16, list(range(8))),
    ("direct", 8, []),
    ("interpolation", 37, list(range(4, 33, 4))),
])
def test_positions_and_condition(name, num_frames, positions):
    layout = make_layout(name)
    assert layout.positions(num_frames) == positions
    clip = torch.randn(2, 4, num_frames, 3, 5)
    known = layout.known_frames(clip)
    assert torch.equal(known, clip[:, :, positions])
    cond, mask = layout.condition(known, num_frames)
    ref_cond, ref_mask = _index_copy_condition(known, num_frames, positions)
    assert torch.equal(cond, ref_cond) and torch.equal(mask, ref_mask)


def test_extension_past_frames_option():
    layout = make_layout("extension", past_frames=3)
    assert layout.positions(10) == [0, 1, 2]
    with pytest.raises(UserError, match="at least 1 past and 1 new"):
        make_layout("extension", past_frames=10).check_frames(10)


def test_registry_names_aliases_and_options():
    assert set(LAYOUTS) == {"first_frame", "interpolation", "extension", "direct", "keyframes"}
    assert "video" in layout_names() and "video" not in layout_names(aliases=False)
    assert layout_class("video") is layout_class("first_frame")
    with pytest.raises(UserError, match="unknown layout"):
        layout_class("sideways")
    with pytest.raises(UserError, match="has no option factor"):
        make_layout("first_frame", factor=2)
    with pytest.raises(UserError, match="input_frames >= 2"):
        make_layout("interpolation", input_frames=1)
    assert make_layout("interpolation", factor=2, pad=1).clip_frames == 2 * 7 + 1 + 2


def test_guidance_follows_the_image_condition():
    assert make_layout("first_frame").guidance(2.0, 7.5) == TwoConditionGuidance(2.0, 7.5)
    assert make_layout("keyframes").guidance(1.5, 6.0) == TwoConditionGuidance(1.5, 6.0)
    assert make_layout("direct").guidance(2.0, 7.5) == ClassifierFreeGuidance(7.5)


def test_first_frame_training_input_is_the_papers():
    """concat([x_t, first frame's latent zero-padded over time, mask at frame 0]), the image dropped per sample."""
    torch.manual_seed(0)
    x0, xt = torch.randn(3, 4, 6, 2, 2), torch.randn(3, 4, 6, 2, 2)
    drop = torch.tensor([False, True, False])
    got = make_layout("video").training_input(x0, xt, {"drop_image": drop}, torch.ones(1000))
    cond = torch.zeros_like(x0)
    cond[:, :, 0] = x0[:, :, 0]
    mask = torch.zeros(3, 1, 6, 2, 2)
    mask[:, :, 0] = 1
    cond[1], mask[1] = 0, 0
    assert torch.equal(got, torch.cat([xt, cond, mask], dim=1))


def test_interpolation_noise_augmentation_in_training():
    """Known frames noised at a level drawn per sample in 0..noise_aug_max, then interleaved."""
    layout = make_layout("interpolation", input_frames=3, factor=2, pad=1)
    alphas = NoiseSchedule().alphas_cumprod
    x0 = torch.randn(2, 4, layout.clip_frames, 2, 2)
    xt = torch.randn_like(x0)
    calls = []
    draws = layout.training_draws(x0, lambda lo, hi: calls.append((lo, hi)) or torch.tensor([5, 200]),
                                  lambda shape: torch.ones(shape))
    assert calls == [(0, 251)] and draws["aug_noise"].shape == (2, 4, 3, 2, 2)
    got = layout.training_input(x0, xt, {"drop_image": torch.tensor([False, False]), **draws}, alphas)
    known = add_noise(x0[:, :, [1, 3, 5]], draws["aug_noise"], draws["t_aug"], alphas)
    cond, mask = _index_copy_condition(known, layout.clip_frames, [1, 3, 5])
    torch.testing.assert_close(got, unet_input(xt, cond, mask), rtol=0, atol=0)
    assert make_layout("first_frame").training_draws(x0, None, None) == {}


def test_direct_keeps_the_conditioning_channels_zero():
    x0, xt = torch.randn(2, 4, 5, 2, 2), torch.randn(2, 4, 5, 2, 2)
    got = make_layout("direct").training_input(x0, xt, {"drop_image": torch.tensor([False, False])}, None)
    assert got.shape == (2, 9, 5, 2, 2) and torch.equal(got[:, :4], xt) and got[:, 4:].abs().sum() == 0
