"""GraphedTrainStep: the whole-step CUDA-graph wrapper. On the CPU it runs the step eagerly, so its contract
(new batches copied into the static inputs, gradients fresh every step, the loss returned) is checked here
against a plain training loop on the tiny video U-Net; recording itself needs a GPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from emu_video.errors import UserError
from emu_video.models import VideoUNet, tiny_config
from emu_video.training.graphed_step import GraphedTrainStep, check_capturable


def _model():
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).train().freeze_spatial()
    return m, m.video_parameters()


def _batches(n):
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        x = torch.randn(2, 9, 3, 16, 16, generator=g)
        t = torch.randint(0, 1000, (2,), generator=g)
        ctx = [torch.randn(2, 5, 24, generator=g), torch.randn(2, 3, 40, generator=g)]
        out.append((x, t, *ctx, torch.randn(2, 4, 3, 16, 16, generator=g)))
    return out


def _train_step(model, opt, x, t, c1, c2, target):
    loss = F.mse_loss(model(x, t, [c1, c2]), target)
    loss.backward()
    opt.step()
    return loss


def _plain_losses(model, opt, batches):
    """The reference: a plain training loop over `batches`."""
    losses = []
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        losses.append(_train_step(model, opt, *batch).item())
    return losses


def _graphed_losses(model, opt, batches, warmup):
    """The same steps through a GraphedTrainStep reading static copies of the batches."""
    static = [torch.zeros_like(v) for v in batches[0]]
    step = GraphedTrainStep(lambda: _train_step(model, opt, *static), opt, static, warmup=warmup)
    return step, [step(*b).item() for b in batches]


def test_graphed_step_trains_like_a_plain_loop_on_the_cpu():
    batches = _batches(3)

    ref, ref_params = _model()
    ref_losses = _plain_losses(ref, torch.optim.AdamW(ref_params, lr=1e-3), batches)

    model, params = _model()
    step, losses = _graphed_losses(model, torch.optim.AdamW(params, lr=1e-3), batches, warmup=1)
    assert not step.cuda and not step.recorded
    assert losses == pytest.approx(ref_losses, rel=1e-6)
    # gradients are fresh each step (the wrapper zeroes them), so the weights match the plain loop's
    for a, b in zip(params, ref_params):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert max(abs(a - b) for a, b in zip(losses[1:], losses[:-1])) > 0  # the batches did change


def test_graphed_step_rejects_bad_batches():
    model, params = _model()
    opt = torch.optim.AdamW(params, lr=1e-3)
    static = [torch.zeros(2, 3), torch.zeros(2)]
    step = GraphedTrainStep(lambda: torch.zeros(()), opt, static)
    with pytest.raises(UserError, match="takes 2 input tensors"):
        step(torch.zeros(2, 3))
    with pytest.raises(UserError, match=r"shape \(4, 3\)"):
        step(torch.zeros(4, 3), torch.zeros(2))


def test_only_capturable_optimisers_can_be_recorded():
    w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(UserError, match="capturable=True"):
        check_capturable(torch.optim.AdamW([w], lr=1e-3))
    check_capturable(torch.optim.AdamW([w], lr=1e-3, capturable=True))
    check_capturable(torch.optim.SGD([w], lr=1e-3, momentum=0.9))  # no step count on the host


@pytest.mark.skipif(not torch.cuda.is_available(), reason="recording needs a CUDA GPU")
def test_replayed_steps_train_like_eager_steps_on_the_gpu():
    """On a GPU: warm-up, recording and replays with new batches give the weights and losses of the same
    steps run eagerly (float32, the same capturable AdamW)."""
    dev = torch.device("cuda")
    batches = [tuple(v.to(dev) for v in b) for b in _batches(6)]

    def make():
        # With Adam's default eps a weight whose gradient is near zero moves by about lr whatever the
        # gradient's size, so the GPU's run-to-run jitter in such gradients (atomic adds in the backward)
        # would flip whole steps; a large eps keeps each update proportional to its gradient.
        m, params = _model()
        m.to(dev)
        return m, params, torch.optim.AdamW(params, lr=1e-3, eps=1e-2, capturable=True)

    ref, ref_params, ref_opt = make()
    ref_losses = _plain_losses(ref, ref_opt, batches)

    model, params, opt = make()
    start = [p.detach().clone() for p in params]
    step, losses = _graphed_losses(model, opt, batches, warmup=2)
    assert step.recorded and step.calls == 3  # two eager steps, one recording; the rest replays
    assert losses == pytest.approx(ref_losses, rel=1e-4)
    # The GPU's backward kernels are not bitwise reproducible (atomic adds), so compare how far each tensor
    # moved in the six steps: a replay that read stale inputs or gradients would be off by whole steps.
    for a, b, a0 in zip(params, ref_params, start):
        moved = (b - a0).norm()
        assert moved > 0
        assert (a - b).norm() <= 1e-2 * moved
    with pytest.raises(UserError, match="capturable=True"):
        GraphedTrainStep(step.step_fn, torch.optim.AdamW(params, lr=1e-3), step.inputs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="recording needs a CUDA GPU")
def test_a_step_that_reads_the_host_is_refused_with_a_clear_error_on_the_gpu():
    dev = torch.device("cuda")
    w = torch.nn.Parameter(torch.ones(4, device=dev))
    opt = torch.optim.AdamW([w], lr=1e-3, capturable=True)
    x = torch.ones(4, device=dev)

    def step_fn():
        loss = (w * x).sum()
        if loss.item() > 0:  # a host synchronisation: fine eagerly, impossible inside a recording
            loss.backward()
        opt.step()
        return loss

    step = GraphedTrainStep(step_fn, opt, [x], warmup=1)
    step(torch.ones(4, device=dev))  # the eager warm-up step trains
    with pytest.raises(UserError, match="could not be recorded into a CUDA graph.*train.cuda_graph=false"):
        step(torch.ones(4, device=dev))
