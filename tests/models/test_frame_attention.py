"""The fused short-sequence kernel for temporal self-attention (`emu_video.models.frame_attention`).

The kernel is Triton; on this CPU-only machine it runs in Triton's interpreter (TRITON_INTERPRET=1, set
before Triton is imported, hence a subprocess) and is checked against PyTorch's SDPA in float32, alone and
inside a U-Net forward.
"""

import textwrap

import torch
from triton_helpers import needs_triton, run_in_triton_interpreter

from emu_video.models import frame_attention


def test_supports_only_cuda_short_sequences_and_known_head_sizes():
    x = torch.randn(1, 8, 4, 64)
    assert not frame_attention.supports(x, 8, 32)  # CPU
    if torch.cuda.is_available() and frame_attention.available():
        y = x.cuda().bfloat16()
        assert frame_attention.supports(y, 8, 32)
        assert frame_attention.supports(y.requires_grad_(), 8, 32)
        assert not frame_attention.supports(y, frame_attention.MAX_FRAMES + 1, 32)
        assert not frame_attention.supports(y, 8, 48)


SCRIPT = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    from emu_video.models import frame_attention
    from unet_pairs import reference_pair

    def reference(q, k, v, heads):
        b, t, p, c = q.shape
        split = lambda z: z.reshape(b, t, p * heads, c // heads).transpose(1, 2)
        return F.scaled_dot_product_attention(split(q), split(k), split(v)).transpose(1, 2).reshape(b, t, p, c)

    torch.manual_seed(0)
    # (B, T, P, C, heads): T below, at and above a power of two; head dims 16, 32, 64; T = 37 as in interpolation
    for b, t, p, c, h in [(2, 5, 7, 64, 2), (3, 37, 6, 384, 6), (1, 16, 5, 128, 2), (2, 8, 3, 96, 3), (1, 100, 2, 128, 1)]:
        q, k, v = torch.randn(b, t, p, 3 * c).chunk(3, dim=-1)  # strided views of one projection
        out = frame_attention.frames_attention(q, k, v, h)
        err = (out - reference(q, k, v, h)).abs().max().item()
        assert out.shape == q.shape and out.is_contiguous(), (out.shape, out.stride())
        assert err < 1e-5, ((b, t, p, c, h), err)
    # non-unit channel stride is made contiguous first
    q = torch.randn(1, 4, 3, 32).transpose(2, 3).contiguous().transpose(2, 3)
    err = (frame_attention.frames_attention(q, q, q, 2) - reference(q, q, q, 2)).abs().max().item()
    assert err < 1e-5, err
    try:
        frame_attention.frames_attention(q, q, q, 3)
        raise AssertionError("uneven heads accepted")
    except ValueError:
        pass
    # the custom op's registration (schema, fake tensor implementation) is sound
    q, k, v = torch.randn(2, 6, 5, 96).chunk(3, dim=-1)
    torch.library.opcheck(frame_attention.frames_attention, (q, k, v, 2),
                          test_utils=("test_schema", "test_faketensor"))

    # backward: gradients of q, k, v (views of one projection) equal SDPA's
    for b, t, p, c, h in [(2, 5, 7, 64, 2), (1, 37, 3, 128, 2), (2, 16, 4, 96, 3), (1, 100, 2, 64, 1)]:
        qkv = torch.randn(b, t, p, 3 * c, requires_grad=True)
        grad = torch.randn(b, t, p, c)
        (frame_attention.frames_attention(*qkv.chunk(3, dim=-1), h) * grad).sum().backward()
        ours, qkv.grad = qkv.grad, None
        (reference(*qkv.chunk(3, dim=-1), h) * grad).sum().backward()
        err = (ours - qkv.grad).abs().max().item()
        assert err < 1e-4 * max(1.0, qkv.grad.abs().max().item()), ((b, t, p, c, h), err)
    q, k, v = (torch.randn(2, 6, 5, 32, requires_grad=True) for _ in range(3))
    torch.library.opcheck(frame_attention.frames_attention, (q, k, v, 2),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    g = torch.randn(2, 6, 5, 32)
    torch.library.opcheck(frame_attention.frames_attention_backward, (q.detach(), k.detach(), v.detach(), g, 2),
                          test_utils=("test_schema", "test_faketensor"))

    # FLOPs as FlopCounterMode counts them: the forward as the two matmuls of eager attention, the backward
    # as SDPA's backward formula (scores recomputed: 5 matmuls)
    from torch.utils.flop_counter import FlopCounterMode
    b, t, p, c, h = 2, 5, 7, 64, 2
    q = torch.randn(b, t, p, c, requires_grad=True)
    split = lambda z: z.reshape(b, t, p * h, c // h).transpose(1, 2)
    with FlopCounterMode(display=False) as eager:
        torch.softmax(split(q) @ split(q).transpose(-1, -2), dim=-1) @ split(q)
    with FlopCounterMode(display=False) as fwd:
        out = frame_attention.frames_attention(q, q, q, h)
    with FlopCounterMode(display=False) as bwd:
        out.sum().backward()
    assert fwd.get_total_flops() == eager.get_total_flops() > 0, (fwd.get_total_flops(), eager.get_total_flops())
    assert 2 * bwd.get_total_flops() == 5 * fwd.get_total_flops(), bwd.get_total_flops()

    # inside the U-Net: the kernel path (forced on for this CPU float32 run) equals the reference path
    fast, ref = reference_pair(1)
    calls = []
    real = frame_attention.frames_attention
    def counted(*a):
        calls.append(1)
        return real(*a)
    frame_attention.supports = lambda x, frames, head_dim: True
    frame_attention.HALF = (torch.float32,)
    frame_attention.frames_attention = counted
    x = torch.randn(2, fast.config.in_channels, 5, 8, 8)  # small: the interpreter runs each program in Python
    t = torch.tensor([10, 700])
    ctx = [torch.randn(2, 5, 24), torch.randn(2, 3, 40)]
    with torch.no_grad():
        err = (fast(x, t, ctx) - ref(x, t, ctx)).abs().max().item()
    assert calls, "the kernel was not used"
    assert err < 1e-5, err
    # and a training step through it: the temporal layers' gradients equal the reference path's
    def grads(model):
        model.zero_grad()
        (model(x, t, ctx) ** 2).mean().backward()
        return {n: prm.grad for n, prm in model.named_parameters() if prm.grad is not None}
    calls.clear()
    ours, theirs = grads(fast), grads(ref)
    assert calls and ours.keys() == theirs.keys() and any("temporal" in n for n in ours)
    err = max(((ours[n] - theirs[n]).abs().max() / theirs[n].abs().max().clamp_min(1e-6)).item() for n in ours)
    assert err < 1e-4, err
    print("OK", len(calls))
    """
)


@needs_triton
def test_kernel_matches_sdpa_in_triton_interpreter():
    run_in_triton_interpreter(SCRIPT, timeout=600)


def test_fast_paths_switch_the_kernel():
    from emu_video.models import VideoUNet, tiny_config
    from emu_video.models.attention import Attention

    m = VideoUNet(tiny_config())
    attns = [mod for mod in m.modules() if isinstance(mod, Attention)]
    m.set_fast_paths(True, frames_kernel=False)
    assert all(a.fast_path and not a.frames_kernel for a in attns)
    m.set_fast_paths(False)
    assert all(not a.fast_path and not a.frames_kernel for a in attns)
    m.set_fast_paths(True)
    assert all(a.fast_path and a.frames_kernel for a in attns)
