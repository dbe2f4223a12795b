import json

import pytest
import torch

from emu_video.training.checkpoint import CheckpointStore, read_state, read_tensors
from emu_video.training.ema import EMA
from emu_video.training.lr import warmup_constant
from emu_video.training.train_state import (
    SampleRandom,
    load_optimizer_tensors,
    optimizer_tensors,
    rng_state,
    set_rng_state,
)


def _write(store, step):
    return store.write(step, {"trainable": {"w": torch.full((2,), float(step))}}, {"step": step})


def test_store_keeps_the_last_k_and_points_at_the_newest(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    for step in (1, 2, 3):
        _write(store, step)
    assert [s for s, _ in store.complete()] == [2, 3]
    assert store.latest().name == "step-00000003"
    assert read_state(store.latest()) == {"step": 3}
    assert torch.equal(read_tensors(store.latest(), "trainable")["w"], torch.full((2,), 3.0))


def test_partial_and_stale_checkpoints_are_ignored(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    _write(store, 1)
    _write(store, 2)
    # A run killed while writing leaves a temporary folder and maybe a folder without state.json.
    (tmp_path / ".tmp-step-00000003-99").mkdir()
    (tmp_path / "step-00000004").mkdir()
    assert store.latest().name == "step-00000002"
    (tmp_path / "latest").write_text("step-00000009\n")  # pointer to a folder that does not exist
    assert store.latest().name == "step-00000002"
    store.remove_partial()
    assert not (tmp_path / ".tmp-step-00000003-99").exists()


def test_optimizer_state_round_trips_exactly():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    named = list(model.named_parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        model(torch.randn(5, 4)).square().mean().backward()
        opt.step()
        opt.zero_grad()
    saved = optimizer_tensors(opt, named, lambda t: t)
    assert set(saved) == {f"{n}::{k}" for n, _ in named for k in ("step", "exp_avg", "exp_avg_sq")}

    twin = torch.nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    opt2 = torch.optim.AdamW(twin.parameters(), lr=1e-2)
    load_optimizer_tensors(opt2, list(twin.named_parameters()), saved, lambda full, like: full.to(like))
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (twin, opt2)):
        m(x).square().mean().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def test_rng_state_is_json_and_restores():
    state = json.loads(json.dumps(rng_state()))
    a = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


def test_sample_draws_depend_on_the_sample_not_on_how_the_batch_is_split():
    whole = SampleRandom(0, 5, [3, 8, 1, 6])
    halves = [SampleRandom(0, 5, [3, 8]), SampleRandom(0, 5, [1, 6])]
    assert torch.equal(whole.randn((4, 2, 3)), torch.cat([h.randn((2, 2, 3)) for h in halves]))
    whole, halves = SampleRandom(0, 5, [3, 8, 1, 6]), [SampleRandom(0, 5, [3, 8]), SampleRandom(0, 5, [1, 6])]
    assert torch.equal(whole.randint(0, 1000), torch.cat([h.randint(0, 1000) for h in halves]))
    assert torch.equal(whole.rand(8), torch.cat([h.rand(4) for h in halves]))  # 2 rows per sample (frames)
    # another step, seed or sample draws something else; the same key draws the same again
    noise = SampleRandom(0, 5, [3]).randn((1, 16))
    assert torch.equal(SampleRandom(0, 5, [3]).randn((1, 16)), noise)
    for other in (SampleRandom(0, 6, [3]), SampleRandom(1, 5, [3]), SampleRandom(0, 5, [4])):
        assert not torch.equal(other.randn((1, 16)), noise)
    with pytest.raises(ValueError, match="split evenly"):
        SampleRandom(0, 5, [1, 2]).randn((3, 4))


def test_warmup_then_constant_and_ema():
    assert [warmup_constant(s, 1e-4, 4) for s in range(6)] == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4, 1e-4, 1e-4])
    p = torch.nn.Parameter(torch.zeros(2))
    ema = EMA([("p", p)], decay=0.5)
    with torch.no_grad():
        p.fill_(4.0)
    ema.update()
    assert torch.equal(dict(ema.named_tensors())["p"], torch.full((2,), 2.0))
    assert EMA([("p", p)], 0.0).named_tensors()[0][1] is not None
    warm = EMA([("p", p)], decay=0.9999)
    assert warm.decay_at(0) == pytest.approx(0.1) and warm.decay_at(10**6) == 0.9999
    assert EMA([("p", p)], 0.9999, warmup=False).decay_at(0) == 0.9999


def test_restored_moments_take_the_layout_of_channels_last_weights():
    """Fused AdamW on CUDA refuses moments whose strides differ from their weights'; a checkpoint holds them
    contiguous, so restoring must lay them out like the (channels-last) weights again."""
    from emu_video.training.parallel import Parallel

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    named = list(conv.named_parameters())
    opt = torch.optim.AdamW(conv.parameters(), lr=1e-2)
    x = torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last)
    conv(x).square().mean().backward()
    opt.step()
    saved = {k: v.contiguous() for k, v in optimizer_tensors(opt, named, lambda t: t).items()}
    assert not saved["weight::exp_avg"].is_contiguous(memory_format=torch.channels_last)

    twin = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    twin.load_state_dict(conv.state_dict())
    opt2 = torch.optim.AdamW(twin.parameters(), lr=1e-2)
    load_optimizer_tensors(opt2, list(twin.named_parameters()), saved, Parallel.shard_like)
    for key in ("exp_avg", "exp_avg_sq"):
        assert opt2.state[twin.weight][key].stride() == twin.weight.stride()
        assert torch.equal(opt2.state[twin.weight][key], opt.state[conv.weight][key])
    for m, o in ((conv, opt), (twin, opt2)):
        o.zero_grad()
        m(x).square().mean().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(conv.parameters(), twin.parameters()))
