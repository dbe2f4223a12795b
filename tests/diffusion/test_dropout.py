import pytest
import torch

from emu_video.diffusion import (
    ConditionDropout,
    apply_image_dropout,
    apply_text_dropout,
)


@pytest.mark.parametrize("rates", [(0.1, 0.1, 0.1), (0.05, 0.2, 0.15), (0.0, 0.5, 0.0), (0.3, 0.3, 0.4)])
def test_rates_converge_and_events_are_exclusive(rates):
    p_text, p_image, p_both = rates
    n = 400_000
    drop_text, drop_image = ConditionDropout(*rates).sample(n, generator=torch.Generator().manual_seed(0))
    assert drop_text.dtype == torch.bool and drop_image.dtype == torch.bool
    assert drop_text.shape == drop_image.shape == (n,)
    text_only = (drop_text & ~drop_image).double().mean().item()
    image_only = (~drop_text & drop_image).double().mean().item()
    both = (drop_text & drop_image).double().mean().item()
    neither = (~drop_text & ~drop_image).double().mean().item()
    tol = 0.004
    assert text_only == pytest.approx(p_text, abs=tol)
    assert image_only == pytest.approx(p_image, abs=tol)
    assert both == pytest.approx(p_both, abs=tol)
    assert neither == pytest.approx(1 - sum(rates), abs=tol)
    # marginals
    assert drop_text.double().mean().item() == pytest.approx(p_text + p_both, abs=tol)
    assert drop_image.double().mean().item() == pytest.approx(p_image + p_both, abs=tol)


def test_sample_is_reproducible_and_one_uniform_per_sample():
    cd = ConditionDropout(0.2, 0.3, 0.1)
    a = cd.sample(64, generator=torch.Generator().manual_seed(5))
    b = cd.sample(64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # the events are cut from one uniform per sample
    u = torch.rand(64, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.equal(a[0], (u < 0.2) | ((u >= 0.5) & (u < 0.6)))
    assert torch.equal(a[1], (u >= 0.2) & (u < 0.6))


def test_zero_and_full_rates():
    t, i = ConditionDropout(0.0, 0.0, 0.0).sample(1000, generator=torch.Generator().manual_seed(0))
    assert not t.any() and not i.any()
    t, i = ConditionDropout(0.0, 0.0, 1.0).sample(1000, generator=torch.Generator().manual_seed(0))
    assert t.all() and i.all()


@pytest.mark.parametrize("kwargs", [{"p_text": -0.1}, {"p_image": 1.2}, {"p_text": 0.5, "p_image": 0.4, "p_both": 0.2},
                                    {"p_both": "0.1"}])
def test_validation(kwargs):
    with pytest.raises(ValueError):
        ConditionDropout(**kwargs)


def test_apply_text_dropout_single_and_multiple_contexts():
    b, length = 4, 5
    clip = torch.randn(b, length, 768)
    t5 = torch.randn(b, length, 2048)
    null_clip = torch.randn(1, length, 768)
    null_t5 = torch.randn(1, length, 2048)
    drop = torch.tensor([True, False, True, False])

    out = apply_text_dropout(clip, null_clip, drop)
    assert out.shape == clip.shape
    assert torch.equal(out[0], null_clip[0]) and torch.equal(out[2], null_clip[0])
    assert torch.equal(out[1], clip[1]) and torch.equal(out[3], clip[3])

    outs = apply_text_dropout([clip, t5], [null_clip, null_t5], drop)
    assert isinstance(outs, list) and len(outs) == 2
    assert torch.equal(outs[0], out)
    assert torch.equal(outs[1][2], null_t5[0]) and torch.equal(outs[1][3], t5[3])
    outs_t = apply_text_dropout((clip, t5), (null_clip, null_t5), drop)
    assert isinstance(outs_t, tuple)
    # inputs untouched
    assert not torch.equal(clip[0], null_clip[0])
    with pytest.raises(ValueError):
        apply_text_dropout([clip, t5], [null_clip], drop)
    with pytest.raises(ValueError, match="drop flags"):
        apply_text_dropout(clip, null_clip, torch.tensor([True, False]))


def test_apply_image_dropout_zeroes_flagged_rows():
    cond = torch.randn(3, 8, 4, 6, 6) + 5.0
    mask = torch.zeros(3, 1, 4, 6, 6)
    mask[:, :, 0] = 1.0
    drop = torch.tensor([False, True, False])
    new_cond, new_mask = apply_image_dropout(cond, mask, drop)
    assert torch.equal(new_cond[1], torch.zeros_like(cond[1]))
    assert torch.equal(new_mask[1], torch.zeros_like(mask[1]))
    for k in (0, 2):
        assert torch.equal(new_cond[k], cond[k]) and torch.equal(new_mask[k], mask[k])
    c2, m2 = apply_image_dropout(cond, None, drop)
    assert m2 is None and torch.equal(c2, new_cond)
