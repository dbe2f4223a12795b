"""Peak GPU memory and samples/s of one video-stage training step: full temporal training vs LoRA, with and
without activation checkpointing and 8-bit AdamW, for the `sd15` U-Net at one batch (random weights;
latents and text contexts drawn at random, as a precomputed cache gives them: no encoders loaded).

    python benchmarks/bench_lora_memory.py --device cuda --batch 1 --frames 8 --resolution 512
    python benchmarks/bench_lora_memory.py --device cpu --tiny          # a quick check that it runs

Prints a table and writes JSON (--out). Peak memory is torch.cuda.max_memory_allocated (CUDA only; "n/a" on
the CPU).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from emu_video.models import VideoUNet, preset, tiny_config
from emu_video.models.lora import add_adapter, lora_config

VARIANTS = {  # name: (lora rank, activation checkpointing, 8-bit AdamW)
    "full temporal": (0, False, False),
    "full temporal + checkpointing": (0, True, False),
    "full temporal + 8-bit AdamW": (0, False, True),
    "LoRA r16 (temporal)": (16, False, False),
    "LoRA r16 + checkpointing": (16, True, False),
    "LoRA r16 + checkpointing + 8-bit AdamW": (16, True, True),
}


def build(args, rank: int, checkpointing: bool, eight_bit: bool):
    torch.manual_seed(0)
    unet = VideoUNet(tiny_config() if args.tiny else preset("sd15"))
    if rank:
        params = [p for _, p in add_adapter(unet, lora_config(unet, rank, 0.0, "temporal"))]
    else:
        unet.freeze_spatial()
        params = [p for p in unet.parameters() if p.requires_grad]
    bf16 = args.device == "cuda"
    for p in unet.parameters():  # frozen weights in bf16 on GPUs, as training does with bf16 precision
        if not p.requires_grad and bf16:
            p.data = p.data.to(torch.bfloat16)
    unet.enable_gradient_checkpointing(checkpointing).to(args.device).train()
    if eight_bit:
        import bitsandbytes

        opt = bitsandbytes.optim.AdamW8bit(params, lr=1e-5)
    else:
        opt = torch.optim.AdamW(params, lr=1e-5, **({"fused": True} if args.device == "cuda" else {}))
    return unet, params, opt, bf16


def measure(args, name: str, rank: int, checkpointing: bool, eight_bit: bool) -> dict:
    dev = torch.device(args.device)
    row = {"variant": name, "lora_rank": rank, "checkpointing": checkpointing, "adamw8bit": eight_bit}
    if eight_bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            return {**row, "error": "bitsandbytes not installed"}
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    try:
        unet, params, opt, bf16 = build(args, rank, checkpointing, eight_bit)
        cfg = unet.config
        latent = args.resolution // 8
        c = cfg.latent_channels
        x = torch.randn(args.batch, 2 * c + 1, args.frames, latent, latent, device=dev)
        ctx = [torch.randn(args.batch, 77, d, device=dev) for d in cfg.context_dims]
        t = torch.randint(0, 1000, (args.batch,), device=dev)
        times = []
        for step in range(args.warmup + args.steps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                out = unet(x, t, ctx)
            out.float().square().mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if step >= args.warmup:
                times.append(time.perf_counter() - t0)
        step_s = sum(times) / len(times)
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
        return {**row, "trainable_params": sum(p.numel() for p in params), "peak_gib": peak,
                "step_seconds": step_s, "samples_per_second": args.batch / step_s}
    except torch.cuda.OutOfMemoryError:
        return {**row, "error": "out of memory"}
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="the tiny U-Net at 64px (a quick check on a CPU)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--resolution", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/lora_memory.json")
    args = ap.parse_args()
    if args.tiny:
        args.resolution, args.frames, args.steps, args.warmup = min(args.resolution, 64), min(args.frames, 4), 2, 1
    rows = [measure(args, name, *v) for name, v in VARIANTS.items()]
    print(f"{'variant':42s} {'trainable':>12s} {'peak GiB':>9s} {'samples/s':>10s}")
    for r in rows:
        if "error" in r:
            print(f"{r['variant']:42s} {r['error']}")
            continue
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "n/a"
        print(f"{r['variant']:42s} {r['trainable_params']:>12,d} {peak:>9s} {r['samples_per_second']:>10.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": "tiny" if args.tiny else "sd15", "device": args.device, "batch": args.batch,
                               "frames": args.frames, "resolution": args.resolution, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
