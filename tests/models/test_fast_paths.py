"""The optimised code paths compute what the reference paths compute (float32, CPU).

Fast paths: fused q/k/v projections, the temporal conv as a (k,1) Conv2d on a view, the temporal transformer
in frame-major token layout (no transposes), channels-last frames, regional / whole-graph torch.compile,
the CUDA-graph cache (CPU: it must stay out of the way), bf16 frozen weights for training, and the sampling
loop's precomputed conditioning.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from unet_pairs import random_model, reference_pair

from emu_video.models import VideoUNet, tiny_config
from emu_video.models import attention as attention_module
from emu_video.models.attention import Attention
from emu_video.models.resnet import Downsample, Upsample
from emu_video.models.temporal import (
    TemporalConv,
    TemporalTransformer,
    TemporalTransformerBlock,
)

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _ctx(b=2):
    return [torch.randn(b, 5, 24), torch.randn(b, 3, 40)]


class CopyCounter(TorchDispatchMode):
    """Counts the ops that only move data (layout copies)."""

    NAMES = ("aten.clone", "aten.copy_", "aten._to_copy", "aten.contiguous")

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if any(str(func.overloadpacket).startswith(n) for n in self.NAMES):
            self.count += 1
        return func(*args, **(kwargs or {}))


# Whole network ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("frames", [1, 5])
def test_fast_paths_match_reference_network(frames):
    fast, ref = reference_pair()
    x = torch.randn(2, 9, frames, 16, 16)
    t = torch.tensor([3, 870])
    ctx = _ctx()
    with torch.no_grad():
        torch.testing.assert_close(fast(x, t, ctx), ref(x, t, ctx), **TOL)
        torch.testing.assert_close(fast(x, t, ctx, use_temporal=False), ref(x, t, ctx, use_temporal=False), **TOL)
        torch.testing.assert_close(fast(x[:, :4, 0], t, ctx), ref(x[:, :4, 0], t, ctx), **TOL)


def test_channels_last_matches_reference_network():
    fast, ref = reference_pair(1)
    fast.to_channels_last()
    assert fast.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 9, 4, 16, 12)  # non-square latents
    t = torch.tensor([10, 500])
    ctx = _ctx()
    with torch.no_grad():
        torch.testing.assert_close(fast(x, t, ctx), ref(x, t, ctx), **TOL)
    # back to the default layout: same weights, same results
    fast.to_channels_last(False)
    assert fast.conv_in.weight.is_contiguous()
    with torch.no_grad():
        torch.testing.assert_close(fast(x, t, ctx), ref(x, t, ctx), **TOL)


def test_odd_latent_sizes_on_the_fast_paths():
    fast, ref = reference_pair(2)
    fast.to_channels_last()
    x = torch.randn(1, 9, 3, 10, 14)
    ctx = _ctx(1)
    with torch.no_grad():
        torch.testing.assert_close(fast(x, 7, ctx), ref(x, 7, ctx), **TOL)


def test_fast_gradients_match_reference():
    fast, ref = reference_pair(3)
    fast.to_channels_last()
    for m in (fast, ref):
        m.train().freeze_spatial()
    x = torch.randn(2, 9, 4, 16, 16)
    t = torch.tensor([5, 600])
    ctx = _ctx()
    target = torch.randn(2, 4, 4, 16, 16)
    for m in (fast, ref):
        torch.nn.functional.mse_loss(m(x, t, ctx), target).backward()
    grads_fast = dict(fast.video_named_parameters())
    for name, p in ref.video_named_parameters():
        torch.testing.assert_close(grads_fast[name].grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_channels_last_fast_paths_copy_less():
    """The temporal layers and transformers need no layout copies on channels-last frames."""
    fast, ref = reference_pair(4)
    fast.to_channels_last()
    x = torch.randn(2, 9, 4, 16, 16)
    counts = {}
    for name, m in (("fast", fast), ("ref", ref)):
        with torch.no_grad(), CopyCounter() as counter:
            m(x, torch.tensor([1, 2]), _ctx())
        counts[name] = counter.count
    assert counts["fast"] < counts["ref"], counts


# Layers -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels_last", [False, True])
def test_temporal_conv_fast_path(channels_last):
    torch.manual_seed(0)
    conv = TemporalConv(8)
    with torch.no_grad():
        conv.conv.weight.normal_()
        conv.conv.bias.normal_()
    x = torch.randn(3 * 5, 8, 6, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        conv.conv.weight.data = conv.conv.weight.data.contiguous(memory_format=torch.channels_last_3d)
    fast = conv(x, 5)
    conv.fast_path = False
    ref = conv(x, 5)
    torch.testing.assert_close(fast, ref, **TOL)
    if channels_last:
        assert fast.is_contiguous(memory_format=torch.channels_last)
        conv.fast_path = True
        with CopyCounter() as counter:
            conv(x, 5)
        assert counter.count == 0


def test_temporal_conv_backward_gets_a_channels_last_gradient():
    """In training on channels-last frames the output gradient is handed to the convolution's backward in
    channels-last memory, whatever layout it arrives in (an NCHW gradient would be copied inside cuDNN's
    backward); the gradients themselves are those of the reference path."""
    torch.manual_seed(0)
    conv = TemporalConv(8)
    with torch.no_grad():
        conv.conv.weight.normal_()
        conv.conv.bias.normal_()
    conv.conv.weight.data = conv.conv.weight.data.contiguous(memory_format=torch.channels_last_3d)
    x = torch.randn(3 * 5, 8, 6, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(3 * 5, 8, 6, 7)  # NCHW, as a compiled region's backward may produce it
    seen = []

    def keep(g):
        seen.append(g)

    out = conv(x, 5)
    out.grad_fn.next_functions[0][0].register_prehook(lambda gs: keep(gs[0]))
    grads = torch.autograd.grad(out, [x, conv.conv.weight, conv.conv.bias], grad)
    assert seen and seen[0].is_contiguous(memory_format=torch.channels_last)
    assert not seen[0].is_contiguous()
    conv.fast_path = False
    ref = torch.autograd.grad(conv(x, 5), [x, conv.conv.weight, conv.conv.bias], grad)
    for g, r in zip(grads, ref):
        # weight and bias gradients sum hundreds of products of size ~1 in another order than the reference:
        # their float32 rounding scales with the largest entries, not with each (possibly cancelled) entry
        torch.testing.assert_close(g, r, rtol=1e-5, atol=max(1e-5, 4e-6 * r.abs().max().item()))
    conv.fast_path = True
    with torch.no_grad():  # inference: nothing added to the graph
        assert conv(x, 5).grad_fn is None


def test_temporal_transformer_fast_path_without_copies():
    torch.manual_seed(0)
    tt = TemporalTransformer(32, 2, [24, 40], groups=8)
    with torch.no_grad():
        for p in tt.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2 * 6, 32, 5, 4).contiguous(memory_format=torch.channels_last)
    ctx = _ctx()
    fast = tt(x, ctx, 6)
    tt.fast_path = False
    torch.testing.assert_close(fast, tt(x, ctx, 6), **TOL)


def test_temporal_block_token_layouts_agree():
    torch.manual_seed(0)
    block = TemporalTransformerBlock(32, 4, 24, 4)
    b, t, p = 2, 5, 6
    x = torch.randn(b, t, p, 32)
    ctx = torch.randn(b, 7, 24)
    four_d = block(x, ctx)
    three_d = block(x.permute(0, 2, 1, 3).reshape(b * p, t, 32), ctx)  # rows batch-major: (video, pixel)
    torch.testing.assert_close(four_d, three_d.view(b, p, t, 32).permute(0, 2, 1, 3), **TOL)


def test_frame_attention_splits_launches_over_pixels(monkeypatch):
    torch.manual_seed(0)
    attn = Attention(32, 4)
    x = torch.randn(2, 5, 9, 32)
    whole = attn.forward_frames(x)
    monkeypatch.setattr(attention_module, "MAX_SDPA_HEADS", 8)  # two pixels (8 heads) per launch
    torch.testing.assert_close(attn.forward_frames(x), whole, **TOL)
    # and it is attention over dim 1, as the reference layout computes it
    ref = attn(x.permute(0, 2, 1, 3).reshape(18, 5, 32)).view(2, 9, 5, 32).permute(0, 2, 1, 3)
    torch.testing.assert_close(whole, ref, **TOL)


@pytest.mark.parametrize("cross", [False, True])
def test_fused_projections_match_separate_ones(cross):
    torch.manual_seed(0)
    attn = Attention(32, 4, context_dim=24 if cross else None)
    x = torch.randn(6, 10, 32)
    ctx = torch.randn(2, 7, 24) if cross else None  # cross: 3 rows per context row (regrouped)
    fused = attn(x, ctx)
    attn.fast_path = False
    torch.testing.assert_close(fused, attn(x, ctx), **TOL)


# Compilation --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["blocks", "full"])
def test_compiled_network_matches_eager(mode):
    torch._dynamo.reset()
    fast, ref = reference_pair(5)
    fast.to_channels_last()
    # Dynamo's capture with the eager backend: quick on CPU, and fullgraph proves there is no graph break.
    fast.set_compile(mode, backend="eager", fullgraph=True)
    x = torch.randn(2, 9, 3, 16, 16)
    t = torch.tensor([3, 300])
    ctx = _ctx()
    with torch.no_grad():
        torch.testing.assert_close(fast(x, t, ctx), ref(x, t, ctx), **TOL)
        torch.testing.assert_close(fast(x, t, ctx, use_temporal=False), ref(x, t, ctx, use_temporal=False), **TOL)
        x5 = torch.randn(2, 9, 5, 16, 16)  # another frame count: recompiled or dynamic, same maths
        torch.testing.assert_close(fast(x5, t, ctx), ref(x5, t, ctx), **TOL)
    fast.set_compile("none")
    assert fast.compile_mode == "none" and fast._compiled_forward is None and fast._compiled_heads is None
    assert all(getattr(m, "_compiled_call_impl", None) is None for m in fast.modules())
    torch._dynamo.reset()


def test_image_path_can_stay_uncompiled():
    torch._dynamo.reset()
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    fast, ref = reference_pair(10)
    fast.set_compile("blocks", backend=counting_backend, image_model=False)
    x = torch.randn(2, 4, 2, 16, 16)
    t = torch.tensor([3, 300])
    ctx = _ctx()
    with torch.no_grad():
        torch.testing.assert_close(fast(x, t, ctx, use_temporal=False), ref(x, t, ctx, use_temporal=False), **TOL)
        assert not graphs  # the text-to-image path ran eagerly
        torch.testing.assert_close(fast(x, t, ctx), ref(x, t, ctx), **TOL)
        assert graphs  # the video path compiled
    torch._dynamo.reset()


def test_blocks_compile_the_resamplers_and_the_heads_too():
    """Regional compilation covers everything with work in it: ResNets, transformers, the down- and
    upsamplers (convolution + temporal convolution + nearest upsampling) and the input and output heads
    (convolutions; GroupNorm + SiLU + convolution), so no convolution or normalisation runs eagerly."""
    torch._dynamo.reset()
    graphs = []

    def recording_backend(gm, example_inputs):
        graphs.append(gm.code)
        return gm.forward

    fast, ref = reference_pair(11)
    fast.to_channels_last()
    fast.set_compile("blocks", backend=recording_backend)
    assert all(getattr(m, "_compiled_call_impl", None) is not None
               for m in fast.modules() if isinstance(m, (Downsample, Upsample)))
    x = torch.randn(2, 9, 3, 16, 16)
    t = torch.tensor([3, 300])
    ctx = _ctx()
    with torch.no_grad():
        torch.testing.assert_close(fast(x, t, ctx), ref(x, t, ctx), **TOL)
    code = "\n".join(graphs)
    for piece in ("conv_in", "conv_out", "conv_norm_out", "interpolate", "temporal_conv_in"):
        assert piece in code, piece
    torch._dynamo.reset()


def test_compiled_memory_budget_recomputes_instead_of_storing():
    """`set_compile(memory_budget=...)`: the compiler's partitioner keeps fewer activations for the backward
    pass (it recomputes them), and the gradients stay those of the eager network."""
    def step(model, x, t, ctx):
        saved = []

        def pack(z):
            saved.append(z.numel() * z.element_size())
            return z

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda z: z):
            out = model(x, t, ctx)
        (out ** 2).mean().backward()
        return sum(saved), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    torch._dynamo.reset()
    fast, ref = reference_pair(11)
    for m in (fast, ref):
        m.train().freeze_spatial()
    # AOTAutograd with its min-cut partitioner (where the budget applies), executed eagerly: quick on CPU
    fast.set_compile("blocks", backend="aot_eager_decomp_partition", memory_budget=0.1)
    assert fast.compile_memory_budget == 0.1
    x = torch.randn(2, 9, 4, 8, 8)
    t = torch.tensor([3, 300])
    ctx = _ctx()
    eager_bytes, eager_grads = step(ref, x, t, ctx)
    budget_bytes, grads = step(fast, x, t, ctx)
    assert budget_bytes < 0.5 * eager_bytes, (budget_bytes, eager_bytes)
    assert grads.keys() == eager_grads.keys() and any("temporal" in n for n in grads)
    for n in grads:
        torch.testing.assert_close(grads[n], eager_grads[n], **TOL)
    fast.set_compile("none")
    assert fast.compile_memory_budget is None
    torch._dynamo.reset()


def test_compiled_training_keeps_channels_last_layouts():
    """Regions compiled under autograd on a channels-last network are compiled with inductor's layout
    optimisation forced on (its heuristic would switch it off for the U-Net's training graphs); inference
    and eager-mode networks leave the compiler's settings alone."""
    import torch._inductor.config as inductor_config

    model = VideoUNet(tiny_config()).to_channels_last(True)
    seen = []
    network = model._network

    def spy(*args):
        seen.append(inductor_config.force_layout_optimization)
        return network(*args)

    model._network = spy
    x, t, ctx = torch.randn(1, 9, 2, 8, 8), torch.tensor([5]), _ctx(1)
    model(x, t, ctx)  # not compiled
    model.set_compile("blocks", backend="eager")
    model(x, t, ctx)  # compiled, with autograd
    with torch.no_grad():
        model(x, t, ctx)  # compiled, inference
    model.to_channels_last(False)
    model(x, t, ctx)  # compiled, with autograd, NCHW
    assert seen == [False, True, False, False]
    assert not inductor_config.force_layout_optimization  # restored
    torch._dynamo.reset()


def test_unknown_compile_mode_is_a_clear_error():
    from emu_video.errors import UserError

    with pytest.raises(UserError, match="compile mode"):
        VideoUNet(tiny_config()).set_compile("turbo")
    with pytest.raises(UserError, match="memory_budget"):
        VideoUNet(tiny_config()).set_compile("blocks", memory_budget=1.5)


def test_tune_kernels_asks_inductor_for_coordinate_descent_tuning(monkeypatch):
    """`tune_kernels` reaches torch.compile as inductor's `coordinate_descent_tuning` option, for every compiled
    region and head; it cannot be mixed with a compile mode that does not tune."""
    from emu_video.errors import UserError
    from emu_video.models.fast import tuned_compile_kwargs

    assert tuned_compile_kwargs({}, None, True) == {"options": {"coordinate_descent_tuning": True}}
    assert tuned_compile_kwargs({"options": {"a": 1}}, "default", True) == {
        "options": {"a": 1, "coordinate_descent_tuning": True}}
    assert tuned_compile_kwargs({}, "max-autotune-no-cudagraphs", True) == {"mode": "max-autotune-no-cudagraphs"}
    assert tuned_compile_kwargs({"fullgraph": True}, None, False) == {"fullgraph": True}
    with pytest.raises(UserError, match="reduce-overhead"):
        tuned_compile_kwargs({}, "reduce-overhead", True)

    calls = []
    real_compile = torch.compile

    def spy(fn=None, **kwargs):
        calls.append(kwargs.get("options"))
        return real_compile(fn, backend="eager")

    monkeypatch.setattr(torch, "compile", spy)
    model = VideoUNet(tiny_config()).eval()
    model.optimize_for_inference(dtype=None, compile="blocks", cuda_graphs=False, tune_kernels=True)
    assert len(calls) == len(model._regions()) + 2  # the blocks, resamplers, and the two heads
    assert all(c == {"coordinate_descent_tuning": True} for c in calls)
    with torch.no_grad():
        model(torch.randn(1, 9, 2, 8, 8), torch.tensor([5]), _ctx(1))
    model.set_compile("none")
    torch._dynamo.reset()


# Inference / training set-ups ---------------------------------------------------------------------------
def test_optimize_for_inference_on_cpu_keeps_results():
    fast, ref = reference_pair(6)
    fast.optimize_for_inference(dtype=None, channels_last=True, compile="none", cuda_graphs=True)
    assert fast.cuda_graphs is None  # CPU weights: nothing to record
    fast.enable_cuda_graphs()  # even when asked for, CPU inputs take the ordinary path
    x = torch.randn(1, 9, 3, 16, 16)
    ctx = _ctx(1)
    with torch.no_grad():
        torch.testing.assert_close(fast(x, 4, ctx), ref(x, 4, ctx), **TOL)
    assert fast.cuda_graphs.num_graphs == 0 and not fast.cuda_graphs.entries


def test_bf16_inference_is_close_to_float32():
    fast, ref = reference_pair(7)
    fast.optimize_for_inference(dtype=torch.bfloat16, channels_last=True, compile="none", cuda_graphs=False)
    x = torch.randn(1, 9, 3, 16, 16)
    ctx = _ctx(1)
    with torch.no_grad():
        low = fast(x.bfloat16(), 4, [c.bfloat16() for c in ctx]).float()
        high = ref(x, 4, ctx)
    assert (low - high).abs().max() / high.abs().max() < 0.05


def test_mixed_precision_training_step():
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).train().freeze_spatial().to_mixed_precision(torch.bfloat16, torch.float32)
    m.to_channels_last().enable_gradient_checkpointing()
    assert m.conv_in.weight.dtype == torch.bfloat16 and m.conv_in_cond.weight.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in m.video_parameters())
    assert all(p.dtype == torch.bfloat16 for _, p in m.spatial_named_parameters())
    opt = torch.optim.AdamW(m.video_parameters(), lr=1e-3)
    x = torch.randn(2, 9, 4, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x, torch.tensor([1, 2]), _ctx())
    loss = torch.nn.functional.mse_loss(out.float(), torch.randn_like(out, dtype=torch.float32))
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in m.video_parameters())
    opt.step()


class _FakeGraph:
    replays = 0

    def replay(self):
        _FakeGraph.replays += 1


@pytest.fixture
def fake_cuda_graphs(monkeypatch):
    """torch.cuda's graph API replaced by inert stand-ins: recording runs the function once, replay does nothing."""
    import contextlib

    recorded = []

    @contextlib.contextmanager
    def graph(g, pool=None):
        recorded.append(g)
        yield

    _FakeGraph.replays = 0
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: "pool")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    return recorded


def test_cuda_graph_cache_bookkeeping(fake_cuda_graphs):
    from emu_video.models.fast import CudaGraphCache

    calls = []

    def fn(scale, x):
        calls.append(x)
        return x * scale

    cache = CudaGraphCache(fn, warmup=2)
    x = torch.arange(4.0).expand(3, 4)  # stride-0 input: copied into a dense static buffer
    for _ in range(2):  # warm-up: real calls, through the static buffer
        torch.testing.assert_close(cache((2.0,), [x]), x * 2)
    assert len(calls) == 2 and all(c is calls[0] for c in calls) and calls[0].is_contiguous()
    out = cache((2.0,), [x + 1])  # records (runs fn once on the buffer), then replays
    assert len(fake_cuda_graphs) == 1 and len(calls) == 3 and _FakeGraph.replays == 1
    torch.testing.assert_close(out, (x + 1) * 2)  # the inert replay leaves the recorded output
    out.zero_()  # callers get a copy, never the static output
    cache((2.0,), [x])
    assert len(calls) == 3 and _FakeGraph.replays == 2 and cache.num_graphs == 1
    torch.testing.assert_close(calls[0], x)  # the new input went into the static buffer
    cache((2.0,), [x], context=True)  # another key (e.g. under autocast): its own warm-up
    cache((3.0,), [x])
    assert len(calls) == 5 and len(cache.entries) == 3
    cache.reset()
    assert not cache.entries and cache.num_graphs == 0


def test_cuda_graph_cache_falls_back_when_recording_fails(fake_cuda_graphs, monkeypatch):
    import contextlib

    from emu_video.models.fast import CudaGraphCache

    @contextlib.contextmanager
    def failing_graph(g, pool=None):
        raise RuntimeError("operation not permitted when stream is capturing")
        yield

    monkeypatch.setattr(torch.cuda, "graph", failing_graph)
    cache = CudaGraphCache(lambda x: x + 1, warmup=1)
    x = torch.ones(2)
    cache((), [x])
    with pytest.warns(RuntimeWarning, match="recording failed"):
        torch.testing.assert_close(cache((), [x]), x + 1)
    torch.testing.assert_close(cache((), [x * 3]), x * 3 + 1)  # eager from then on
    assert len(cache.failures) == 1 and cache.num_graphs == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_replay_matches_eager():
    fast, ref = reference_pair(8)
    fast, ref = fast.cuda(), ref.cuda()
    fast.optimize_for_inference(dtype=None, channels_last=True, compile="none", cuda_graphs=True)
    ctx = [c.cuda() for c in _ctx()]
    with torch.inference_mode():
        for step in range(4):
            x = torch.randn(2, 9, 4, 16, 16, device="cuda")
            t = torch.tensor([step, 999 - step], device="cuda")
            torch.testing.assert_close(fast(x, t, ctx), ref(x, t, ctx), rtol=1e-4, atol=1e-4)
    assert fast.cuda_graphs.num_graphs == 1 and not fast.cuda_graphs.failures
    with torch.no_grad():  # replays also outside inference mode
        torch.testing.assert_close(fast(x, t, ctx), ref(x, t, ctx), rtol=1e-4, atol=1e-4)


# Sampling loop ------------------------------------------------------------------------------------------
def test_guided_denoiser_batches_the_same_inputs_as_before():
    """The precomputed conditioning channels give the U-Net exactly the old concatenation."""
    from emu_video.diffusion import TwoConditionGuidance, two_condition_guidance
    from emu_video.diffusion.conditioning import place_frames, unet_input
    from emu_video.pipelines.base import ConditionedUNet

    torch.manual_seed(0)
    unet = random_model(9)
    null = [torch.randn(1, 5, 24), torch.randn(1, 3, 40)]

    class Components:
        def __init__(self):
            self.unet = unet

        def null_embeddings(self):
            return null

    text = _ctx(1)
    cond, mask = place_frames(torch.randn(1, 4, 1, 16, 16), 3, [0])
    den = TwoConditionGuidance(2.0, 7.5).denoiser(ConditionedUNet(Components(), text, cond, mask))
    with torch.no_grad():
        for t in (999, 500):
            x = torch.randn(1, 4, 3, 16, 16)
            tt = torch.tensor(t)
            full = unet_input(x, cond, mask)
            null_in = unet_input(x, torch.zeros_like(cond), torch.zeros_like(mask))
            ctx = [torch.cat([n, n, c]) for c, n in zip(text, null)]
            out = unet(torch.cat([null_in, full, full]), tt.reshape(1).expand(3), ctx)
            expected = two_condition_guidance(*out.chunk(3), 2.0, 7.5)
            torch.testing.assert_close(den(x, tt), expected, rtol=0, atol=0)
