import pytest
import torch

from emu_video.diffusion import diffusion_loss, sample_timesteps


def _pair(shape=(2, 3, 4, 5, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_unmasked_reductions_match_mse():
    out, tgt = _pair()
    ref = torch.nn.functional.mse_loss(out, tgt)
    torch.testing.assert_close(diffusion_loss(out, tgt), ref)
    torch.testing.assert_close(diffusion_loss(out, tgt, reduction="sum"),
                               torch.nn.functional.mse_loss(out, tgt, reduction="sum"))
    torch.testing.assert_close(diffusion_loss(out, tgt, reduction="none"), (out - tgt) ** 2)
    torch.testing.assert_close(diffusion_loss(out, tgt, reduction="per_sample"), ((out - tgt) ** 2).mean(dim=(1, 2, 3, 4)))


def test_frame_mask_excludes_conditioning_frames():
    out, tgt = _pair()
    # (B, 1, T, 1, 1): frame 0 is a conditioning frame
    mask = torch.ones(2, 1, 4, 1, 1)
    mask[:, :, 0] = 0
    expected = ((out[:, :, 1:] - tgt[:, :, 1:]) ** 2).mean()
    torch.testing.assert_close(diffusion_loss(out, tgt, mask=mask), expected)
    # changing the excluded frame changes nothing
    out2 = out.clone()
    out2[:, :, 0] += 100.0
    torch.testing.assert_close(diffusion_loss(out2, tgt, mask=mask), expected)
    # per-sample
    torch.testing.assert_close(diffusion_loss(out, tgt, mask=mask, reduction="per_sample"),
                               ((out[:, :, 1:] - tgt[:, :, 1:]) ** 2).mean(dim=(1, 2, 3, 4)))
    torch.testing.assert_close(diffusion_loss(out, tgt, mask=mask, reduction="sum"),
                               ((out[:, :, 1:] - tgt[:, :, 1:]) ** 2).sum())


def test_weighted_mask_and_all_zero_mask():
    out, tgt = _pair((2, 3))
    w = torch.tensor([[1.0, 0.5, 0.0], [0.0, 2.0, 1.0]])
    expected = (w * (out - tgt) ** 2).sum() / w.sum()
    torch.testing.assert_close(diffusion_loss(out, tgt, mask=w), expected)
    zero = diffusion_loss(out, tgt, mask=torch.zeros(2, 3))
    assert zero.item() == 0.0


def test_half_precision_upcasts_and_validation():
    out, tgt = _pair()
    loss = diffusion_loss(out.bfloat16(), tgt.bfloat16())
    assert loss.dtype == torch.float32
    with pytest.raises(ValueError, match="reduction"):
        diffusion_loss(out, tgt, reduction="max")
    with pytest.raises(ValueError, match="shapes differ"):
        diffusion_loss(out, tgt[:1])
    with pytest.raises(ValueError, match="broadcast"):
        diffusion_loss(out, tgt, mask=torch.ones(3, 7))


def test_loss_has_gradient():
    out, tgt = _pair()
    out.requires_grad_(True)
    diffusion_loss(out, tgt).backward()
    torch.testing.assert_close(out.grad, 2 * (out - tgt).detach() / out.numel())


def test_sample_timesteps_uniform_and_reproducible():
    g = torch.Generator().manual_seed(0)
    t = sample_timesteps(200_000, 1000, generator=g)
    assert t.dtype == torch.long and t.shape == (200_000,)
    assert int(t.min()) == 0 and int(t.max()) == 999
    counts = torch.bincount(t, minlength=10 * 100).reshape(10, 100).sum(dim=1).double() / t.numel()
    assert torch.allclose(counts, torch.full((10,), 0.1, dtype=torch.float64), atol=0.005)
    assert abs(t.double().mean().item() - 499.5) < 3.0
    a = sample_timesteps(16, 1000, generator=torch.Generator().manual_seed(3))
    b = sample_timesteps(16, 1000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert sample_timesteps(4, 10, device="cpu").device.type == "cpu"
