"""The video U-Net built from a diffusers UNet2DConditionModel equals it frame by frame."""

import pytest
import torch

from emu_video.models import from_diffusers_unet


@pytest.mark.parametrize("frames", [1, 8])
def test_per_frame_output_equals_diffusers(tiny_diffusers_unet, frames):
    ref, folder = tiny_diffusers_unet
    model = from_diffusers_unet(folder).eval()
    torch.manual_seed(1)
    b = 2
    x = torch.randn(b, 4, frames, 16, 16)
    ctx = torch.randn(b, 7, 24)
    t = torch.tensor([3, 741])
    with torch.no_grad():
        ours = model(x, t, ctx)  # temporal layers on, at identity
        ours_image = model(x, t, ctx, use_temporal=False)
        theirs = torch.stack(
            [ref(x[:, :, i], t, encoder_hidden_states=ctx).sample for i in range(frames)], dim=2
        )
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_image, theirs, rtol=1e-5, atol=1e-5)


def test_image_conditioned_input_starts_as_the_image_model(tiny_diffusers_unet):
    _ref, folder = tiny_diffusers_unet
    model = from_diffusers_unet(folder).eval()
    x = torch.randn(1, 4, 3, 16, 16)
    cond = torch.randn(1, 5, 3, 16, 16)  # conditioning latent + mask: new channels start at zero
    ctx = torch.randn(1, 5, 24)
    with torch.no_grad():
        a = model(torch.cat([x, cond], 1), 500, ctx)
        b = model(x, 500, ctx)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_odd_latent_sizes_match_diffusers(tiny_diffusers_unet):
    ref, folder = tiny_diffusers_unet
    model = from_diffusers_unet(folder).eval()
    x = torch.randn(1, 4, 2, 10, 14)
    ctx = torch.randn(1, 3, 24)
    with torch.no_grad():
        ours = model(x, 10, ctx)
        theirs = torch.stack([ref(x[:, :, i], 10, encoder_hidden_states=ctx).sample for i in range(2)], 2)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
