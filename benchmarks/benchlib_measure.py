"""Benchmark measuring: the device environment, step timing, FLOP counting, model builders."""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
import zlib
from collections.abc import Callable
from typing import Any

import torch
from benchlib_report import GiB


# Device helpers -----------------------------------------------------------------------------------------
class Env:
    def __init__(self, device: str, dtype: torch.dtype):
        self.device = torch.device(device)
        self.dtype = dtype
        self.cuda = self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def peak(self) -> dict[str, float | None]:
        if not self.cuda:
            return {"peak_alloc_gib": None, "peak_reserved_gib": None}
        return {
            "peak_alloc_gib": torch.cuda.max_memory_allocated() / GiB,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / GiB,
        }

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16)


def time_steps(env: Env, fn: Callable[[], Any], warmup: int, iters: int, max_seconds: float) -> dict[str, Any]:
    """Median ms per call after `warmup` calls; the first call's time is kept (compile, autotuning)."""
    t0 = time.perf_counter()
    fn()
    env.sync()
    first_s = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        fn()
    env.sync()
    times = []
    deadline = time.perf_counter() + max_seconds
    for i in range(iters):
        if env.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        if i >= 1 and time.perf_counter() > deadline:
            break
    return {"ms": statistics.median(times), "ms_all": [round(t, 3) for t in times], "first_call_s": first_s}


def sdpa_context(name: str):
    """Prefer one fused-attention backend of torch's SDPA (falling back to the others where it cannot run)."""
    if name == "default":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    first = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
             "efficient": SDPBackend.EFFICIENT_ATTENTION}[name]
    order = [first] + [b for b in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                                   SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH) if b != first]
    try:
        return sdpa_kernel(order, set_priority=True)
    except TypeError:  # torch without priorities: only the chosen backend and the math fallback
        return sdpa_kernel([first, SDPBackend.MATH])


def count_flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    return text[:400]


# Models -------------------------------------------------------------------------------------------------
def build_ours(name: str, env: Env, dtype: torch.dtype | None = None):
    from emu_video.models import VideoUNet, preset

    with torch.device(env.device):
        model = VideoUNet(preset(name))
    return model.to(dtype or env.dtype).eval().requires_grad_(False)


def build_peer(name: str, env: Env, dtype: torch.dtype):
    """diffusers UNetMotionModel: SD 1.5's UNet2DConditionModel + the default MotionAdapter (random weights)."""
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

    with torch.device(env.device):
        if name == "tiny":
            unet2d = UNet2DConditionModel(
                sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=2,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                cross_attention_dim=24, attention_head_dim=4, norm_num_groups=8,
            )
            adapter = MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=2, motion_num_attention_heads=2,
                                    motion_norm_num_groups=8)
        else:
            unet2d = UNet2DConditionModel(cross_attention_dim=768)  # SD 1.x shapes
            adapter = MotionAdapter()
        peer = UNetMotionModel.from_unet2d(unet2d, adapter)
    del unet2d
    return peer.to(dtype)


def ours_inputs(model, env: Env, batch: int, frames: int, latent: int, text_len: int, conditioned: bool = True):
    cfg = model.config
    g = torch.Generator("cpu").manual_seed(0)
    ch = cfg.in_channels if conditioned else cfg.latent_channels
    x = torch.randn(batch, ch, frames, latent, latent, generator=g).to(env.device, env.dtype)
    t = torch.randint(0, 1000, (batch,), generator=g).to(env.device)
    ctx = [torch.randn(batch, text_len, d, generator=g).to(env.device, env.dtype) for d in cfg.context_dims]
    return x, t, ctx


def peer_inputs(peer, env: Env, batch: int, frames: int, latent: int, text_len: int, dtype: torch.dtype):
    """The peer's inputs as diffusers' AnimateDiff pipeline gives them: text states repeated for every frame."""
    g = torch.Generator("cpu").manual_seed(0)
    x = torch.randn(batch, peer.config.in_channels, frames, latent, latent, generator=g).to(env.device, dtype)
    t = torch.randint(0, 1000, (batch,), generator=g).to(env.device)
    ctx = torch.randn(batch, text_len, peer.config.cross_attention_dim, generator=g).to(env.device, dtype)
    return x, t, ctx.repeat_interleave(frames, dim=0)



class HashTokenizer:
    """An offline stand-in tokenizer: words hashed to ids behind a start token, padded to max_length.

    What the text encoders see does not matter for timing (random weights); their cost is what counts."""

    def __init__(self, vocab_size: int):
        self.vocab_size = int(vocab_size)

    def __call__(self, texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"):
        ids = torch.zeros(len(texts), max_length, dtype=torch.long)
        mask = torch.zeros(len(texts), max_length, dtype=torch.long)
        for i, text in enumerate(texts):
            toks = [1] + [2 + zlib.crc32(w.encode()) % (self.vocab_size - 2) for w in str(text).split()]
            toks = toks[:max_length]
            ids[i, : len(toks)] = torch.tensor(toks)
            mask[i, : len(toks)] = 1
        return {"input_ids": ids, "attention_mask": mask}
