"""Step caching of the U-Net's deep features: a shallow pass computes exactly what the full pass computes
when the deep feature it reuses is the current one, and the cache's schedule and shape checks."""

import pytest
import torch

from emu_video.models import VideoUNet, tiny_config
from emu_video.models.deep_cache import DeepFeatureCache
from unet_helpers import perturb_video_layers, text_contexts


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).eval()
    perturb_video_layers(m)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return m


@pytest.mark.parametrize("use_temporal", [True, False])
def test_shallow_pass_on_the_same_input_equals_the_full_pass(model, use_temporal):
    torch.manual_seed(1)
    x, t, ctx = torch.randn(2, 9, 4, 16, 16), torch.tensor([700, 700]), text_contexts(2)
    with torch.no_grad():
        ref = model(x, t, ctx, use_temporal=use_temporal)
        cache = DeepFeatureCache(interval=2)
        cache.refresh(0)
        full = model(x, t, ctx, use_temporal=use_temporal, cache=cache)
        cache.refresh(1)
        shallow = model(x, t, ctx, use_temporal=use_temporal, cache=cache)
    assert cache.full_steps == 1 and cache.shallow_steps == 1
    assert torch.equal(full, ref) and torch.equal(shallow, ref)


def test_shallow_pass_reuses_the_stored_feature_and_only_the_first_level_runs(model):
    torch.manual_seed(2)
    x1, x2, ctx = torch.randn(1, 9, 4, 16, 16), torch.randn(1, 9, 4, 16, 16), text_contexts(1)
    t1, t2 = torch.tensor([800]), torch.tensor([600])
    calls = []
    hooks = [b.register_forward_hook(lambda *a, i=i: calls.append(i)) for i, b in enumerate(model.up_blocks)]
    try:
        with torch.no_grad():
            cache = DeepFeatureCache(interval=3)
            cache.refresh(0)
            model(x1, t1, ctx, cache=cache)
            stored = cache.feature.clone()
            calls.clear()
            cache.refresh(1)
            got = model(x2, t2, ctx, cache=cache)
    finally:
        for h in hooks:
            h.remove()
    assert calls == [len(model.up_blocks) - 1]  # only the last up block ran
    assert torch.equal(cache.feature, stored)
    # the reference: the full network on x2 with the up path's input to the last block replaced by `stored`
    last = model.up_blocks[-1]
    replaced = last.register_forward_pre_hook(lambda mod, args: (stored, *args[1:]))
    try:
        with torch.no_grad():
            want = model(x2, t2, ctx)
    finally:
        replaced.remove()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        assert not torch.allclose(got, model(x2, t2, ctx), atol=1e-4)  # the reuse is an approximation


def test_schedule_interval_one_never_reuses_and_shape_changes_refresh(model):
    cache = DeepFeatureCache(interval=1)
    for i in range(4):
        cache.refresh(i)
        assert not cache.reuse
    cache = DeepFeatureCache(interval=3)
    assert [(cache.refresh(i), cache.reuse)[1] for i in range(7)] == [False, True, True, False, True, True, False]
    with pytest.raises(ValueError):
        DeepFeatureCache(interval=0)
    torch.manual_seed(3)
    ctx3, ctx1 = text_contexts(3), text_contexts(1)
    with torch.no_grad():
        cache.refresh(0)
        model(torch.randn(3, 9, 4, 16, 16), torch.tensor([500] * 3), ctx3, cache=cache)
        cache.refresh(1)  # a reuse step, but the batch shrank (e.g. after CFG truncation): a full pass
        x = torch.randn(1, 9, 4, 16, 16)
        out = model(x, torch.tensor([400]), ctx1, cache=cache)
        assert torch.equal(out, model(x, torch.tensor([400]), ctx1))
    assert cache.full_steps == 2 and cache.shallow_steps == 0 and cache.feature.shape[0] == 4
