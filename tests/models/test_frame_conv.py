"""The implicit-GEMM temporal convolution (`emu_video.models.frame_conv`).

The kernel is Triton; on this CPU-only machine it runs in Triton's interpreter (TRITON_INTERPRET=1, set
before Triton is imported, hence a subprocess) and is checked against PyTorch's (k, 1) convolution in float32:
alone, through the autotuned entry, as a custom op, and inside a U-Net forward (eager and compiled).
"""

import textwrap

import torch
from triton_helpers import needs_triton, run_in_triton_interpreter

from emu_video.models import frame_conv


def test_kernel_is_preferred_only_for_cuda_half_channels_last_frames_large_enough():
    x = torch.randn(48, 64, 16, 16).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3)
    assert not frame_conv.supports(x, w) and not frame_conv.preferred(x, w)  # CPU
    if torch.cuda.is_available() and frame_conv.available():
        y, v = x.cuda().bfloat16(), w.cuda().bfloat16()
        assert frame_conv.supports(y, v) and frame_conv.preferred(y, v)
        assert not frame_conv.supports(y.contiguous(), v)  # NCHW frames
        assert not frame_conv.supports(y.float(), v.float())
        assert frame_conv.supports(y[:4, :, :8, :8], v) and not frame_conv.preferred(y[:4, :, :8, :8].contiguous(memory_format=torch.channels_last), v)


SCRIPT = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    import triton
    from emu_video.models import frame_conv
    from unet_pairs import reference_pair

    def reference(x, w, b, frames):
        bt, c, h, ww = x.shape
        v = x.reshape(bt // frames, frames, c, h * ww).transpose(1, 2)
        y = F.conv2d(v, w.unsqueeze(-1), b, padding=(w.shape[-1] // 2, 0))
        return y.transpose(1, 2).reshape(bt, w.shape[0], h, ww)

    def frames_cl(bt, c, h, w):
        return torch.randn(bt, c, h, w).contiguous(memory_format=torch.channels_last)

    torch.manual_seed(0)
    # (B, T, C_in, C_out, H, W, k, bias, tiles): one frame, frames at the edges, odd pixel counts (masked rows),
    # C_out not a multiple of the tile (masked columns), a 5-tap kernel, several K tiles per tap
    cases = [(2, 5, 32, 48, 4, 4, 3, True, None), (1, 3, 64, 32, 3, 5, 3, False, None), (2, 1, 16, 16, 2, 2, 3, True, None),
             (1, 6, 32, 32, 4, 4, 5, True, None),
             (1, 4, 64, 96, 4, 4, 3, True, dict(BLOCK_M=16, BLOCK_N=32, BLOCK_K=16, num_warps=4, num_stages=2))]
    for b, t, ci, co, h, w, k, bias, cfg in cases:
        x = frames_cl(b * t, ci, h, w)
        wt = torch.randn(co, ci, k)
        bs = torch.randn(co) if bias else None
        y = frame_conv._launch(x, wt, bs, t, cfg)
        assert y.shape == (b * t, co, h, w) and y.is_contiguous(memory_format=torch.channels_last), (y.shape, y.stride())
        err = (y - reference(x, wt, bs, t)).abs().max().item()
        assert err < 1e-4, ((b, t, ci, co, h, w, k), err)
    try:
        frame_conv._launch(frames_cl(2, 48, 2, 2), torch.randn(16, 48, 3), None, 2, dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=32))
        raise AssertionError("a BLOCK_K that does not divide the channels was accepted")
    except ValueError:
        pass

    # the autotuned entry (what CUDA tensors take): with one candidate left after pruning it runs without timing
    x, wt, bs = frames_cl(6, 32, 4, 4), torch.randn(48, 32, 3), torch.randn(48)
    y = torch.empty(6, 48, 4, 4).contiguous(memory_format=torch.channels_last)
    grid = lambda meta: (6 * triton.cdiv(16, meta["BLOCK_M"]) * triton.cdiv(48, meta["BLOCK_N"]),)
    frame_conv._frames_conv_tuned[grid](x, wt.permute(2, 0, 1).contiguous(), bs, y, 3, 16, 32, 48, 6, TAPS=3, HAS_BIAS=True)
    err = (y - reference(x, wt, bs, 3)).abs().max().item()
    assert err < 1e-4, err
    pruned = frame_conv._prune(frame_conv._CONFIGS, {"c_in": 384, "pixels": 4096, "c_out": 384})
    assert pruned and all(c.kwargs["BLOCK_K"] == 64 for c in pruned) and len(pruned) >= 3, pruned
    assert all(c.kwargs["BLOCK_M"] <= 64 for c in frame_conv._prune(frame_conv._CONFIGS, {"c_in": 64, "pixels": 64, "c_out": 64}))

    # the custom op: checks its arguments, NCHW frames are made channels-last, registration is sound
    x = torch.randn(4, 32, 3, 3)  # NCHW
    wt, bs = torch.randn(32, 32, 3), torch.randn(32)
    err = (frame_conv.frames_conv(x, wt, bs, 2) - reference(x, wt, bs, 2)).abs().max().item()
    assert err < 1e-4, err
    for bad in [(x, wt, bs, 3), (x, torch.randn(32, 16, 3), bs, 2), (x, torch.randn(32, 32, 2), bs, 2), (x, wt, torch.randn(5), 2)]:
        try:
            frame_conv.frames_conv(*bad)
            raise AssertionError("bad arguments accepted")
        except ValueError:
            pass
    torch.library.opcheck(frame_conv.frames_conv, (frames_cl(4, 32, 2, 2), wt, bs, 2), test_utils=("test_schema", "test_faketensor"))

    # FLOPs as FlopCounterMode counts the convolution it replaces
    from torch.utils.flop_counter import FlopCounterMode
    x = frames_cl(6, 32, 4, 4)
    with FlopCounterMode(display=False) as ours:
        frame_conv.frames_conv(x, wt, bs, 3)
    with FlopCounterMode(display=False) as conv:
        reference(x, wt, bs, 3)
    assert ours.get_total_flops() == conv.get_total_flops() > 0, (ours.get_total_flops(), conv.get_total_flops())

    # inside the U-Net (kernel forced on for this CPU float32 run): equal to the reference path, eager and compiled
    fast, ref = reference_pair(1)
    fast.to_channels_last()
    calls = []
    real = frame_conv.frames_conv
    def counted(*a):
        calls.append(1)
        return real(*a)
    frame_conv.preferred = lambda x, w: x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] % 16 == 0
    frame_conv.frames_conv = counted
    x = torch.randn(2, fast.config.in_channels, 5, 8, 8)
    t = torch.tensor([10, 700])
    ctx = [torch.randn(2, 5, 24), torch.randn(2, 3, 40)]
    with torch.no_grad():
        expected = ref(x, t, ctx)
        err = (fast(x, t, ctx) - expected).abs().max().item()
    assert calls, "the kernel was not used"
    assert err < 1e-5, err
    # with gradients the layer keeps cuDNN's convolution (the kernel has no backward)
    calls.clear()
    fast.requires_grad_(True)
    fast(x, t, ctx).sum().backward()
    assert not calls, "the kernel ran under autograd"
    fast.requires_grad_(False)
    frame_conv.frames_conv = real
    fast.set_compile("blocks", backend="aot_eager", dynamic=False)
    with torch.no_grad():
        err = (fast(x, t, ctx) - expected).abs().max().item()
    assert err < 1e-5, err
    print("OK", len(calls))
    """
)


@needs_triton
def test_kernel_matches_convolution_in_triton_interpreter():
    run_in_triton_interpreter(SCRIPT, timeout=900)
