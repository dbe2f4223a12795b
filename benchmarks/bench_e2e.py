"""The paper-size text -> 65-frame 512 px video, baseline against fast settings, in one run on one GPU.

    python benchmarks/bench_e2e.py --out results/e2e.json --markdown results/e2e.md          # on the GPU
    python benchmarks/bench_e2e.py --tiny --out /tmp/e2e.json                          # a CPU smoke run

(`--tiny`: the tiny configuration at 64 px with a tenth of the steps; its numbers mean nothing.)

The `paper` U-Net configuration (4.3B parameters) with random weights, CLIP-L- and T5-XL-shaped text encoders
(transformers, random weights, a hashing tokenizer) and the paper's autoencoder shape (our own KL autoencoder,
random weights): nothing is downloaded, and neither diffusers nor PyAV is needed. Every setting makes the whole
video: first frame, 16 frames at 4 fps, two interpolation windows, 65 frames decoded, in bf16 with the U-Net's
fast paths (compiled blocks and CUDA graphs, as `emu-video generate --optimize`).

The baseline is the diffusers-style setting: DDIM, 50 steps per stage, every guidance pass, no caching. The
other settings combine DPM-Solver++(2M) with fewer steps, CFG truncation (`trunc06`: the last 40 % of each
stage's steps run the fully conditioned pass only) and step caching (`cache2`: a full U-Net pass every second
step, shallow passes reusing the deep features between; CUDA graphs are not used while caching). For each:
wall time (the median of `--repeats` runs after a warm-up run that compiles every shape), peak GPU memory,
and how far its final video latents are from the baseline's: relative L2 distance and PSNR over the baseline
latents' range. The latents of each setting are kept in `--latents-dir`, so a later call (`--append`) compares
its settings with the baseline of an earlier one.

With a time budget (`--budget-s`) a setting whose estimated time no longer fits is skipped and says so.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib_measure import HashTokenizer  # noqa: E402

# name -> pipeline settings (steps apply to every stage)
SETTINGS: dict[str, dict] = {
    "ddim50": {"sampler": "ddim", "steps": 50},
    "dpmpp25": {"sampler": "dpmpp-2m", "steps": 25},
    "dpmpp25+trunc06": {"sampler": "dpmpp-2m", "steps": 25, "cfg_truncation": 0.6},
    "dpmpp25+trunc06+cache2": {"sampler": "dpmpp-2m", "steps": 25, "cfg_truncation": 0.6, "cache_interval": 2},
    "dpmpp20+trunc06+cache2": {"sampler": "dpmpp-2m", "steps": 20, "cfg_truncation": 0.6, "cache_interval": 2},
    "ddim50+trunc06+cache2": {"sampler": "ddim", "steps": 50, "cfg_truncation": 0.6, "cache_interval": 2},
    "ddim50+cache2": {"sampler": "ddim", "steps": 50, "cache_interval": 2},
    "ddim50+trunc06": {"sampler": "ddim", "steps": 50, "cfg_truncation": 0.6},
}
DEFAULT_SETTINGS = "ddim50,dpmpp25,dpmpp25+trunc06,dpmpp25+trunc06+cache2,dpmpp20+trunc06+cache2"
REFERENCE = "ddim50"
PROMPT = "a corgi running on a beach at sunset, waves in the background"
GiB = 1024 ** 3


def build_components(tiny: bool, device: torch.device, dtype: torch.dtype, compile_blocks: bool, graphs: bool):
    """The pipeline's parts with random weights, built in memory."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from emu_video.diffusion import NoiseSchedule
    from emu_video.models import VideoUNet, preset
    from emu_video.models.autoencoder import FrameAutoencoder
    from emu_video.models.kl_autoencoder import KLAutoencoder
    from emu_video.models.text_encoder import TextEncoder
    from emu_video.models.unet import is_video_param
    from emu_video.pipelines.components import EmuVideoComponents, ModelIndex

    torch.manual_seed(0)
    with torch.device(device):
        unet = VideoUNet(preset("tiny" if tiny else "paper"))
        dims = unet.config.context_dims
        if tiny:
            clip = CLIPTextModel(CLIPTextConfig(vocab_size=1000, hidden_size=dims[0], intermediate_size=2 * dims[0],
                                                num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                                                pad_token_id=0, bos_token_id=1, eos_token_id=2))
            t5 = T5EncoderModel(T5Config(vocab_size=1000, d_model=dims[1], d_kv=8, d_ff=2 * dims[1], num_layers=1,
                                         num_heads=2, feed_forward_proj="gated-gelu"))
            vae = KLAutoencoder(block_out_channels=[8, 16], layers_per_block=1, latent_channels=unet.config.latent_channels,
                                norm_num_groups=4)
        else:  # CLIP-L text tower, T5-XL encoder, the paper's autoencoder (App. Table 2)
            clip = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77))
            t5 = T5EncoderModel(T5Config(vocab_size=32128, d_model=2048, d_kv=64, d_ff=5120, num_layers=24,
                                         num_heads=32, feed_forward_proj="gated-gelu"))
            vae = KLAutoencoder(block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=8,
                                norm_num_groups=32)
    with torch.no_grad():  # the video layers start as identity: move them, as training would
        for _, p in unet.video_named_parameters():
            p.add_(torch.randn_like(p) * 0.01)
    unet = unet.to(dtype).eval().requires_grad_(False)
    unet.optimize_for_inference(dtype=dtype, channels_last=True, compile="blocks" if compile_blocks else "none",
                                cuda_graphs=graphs, dynamic=False)
    text_len = 16 if tiny else 77
    encoders = [TextEncoder(HashTokenizer(clip.config.vocab_size), clip.to(dtype).eval(), max_length=text_len),
                TextEncoder(HashTokenizer(t5.config.vocab_size), t5.to(dtype).eval(), max_length=text_len)]
    schedule = NoiseSchedule.stage_512().to_dict()
    size = 64 if tiny else 512
    index = ModelIndex(
        text_encoders=[{"path": "clip"}, {"path": "t5"}],
        layouts={"first_frame": {"schedule": schedule}, "interpolation": {"weights": "interpolation", "schedule": schedule}},
        defaults={"num_frames": 16, "height": size, "width": size},
    )
    interp = {k: v.clone() for k, v in unet.state_dict().items() if is_video_param(k)}
    autoencoder = FrameAutoencoder(vae.to(dtype), chunk_size=8)
    if device.type == "cuda" and compile_blocks:
        autoencoder.optimize_for_inference(compile=True)
    return EmuVideoComponents(unet, autoencoder, encoders, index, {"interpolation": interp})


def call_kwargs(settings: dict, steps: int | None = None, tiny: bool = False) -> dict:
    n = steps or settings["steps"]
    if tiny:  # a tenth of the steps: the smoke run checks the script, not the numbers
        n = max(2, n // 10)
    return {"sampler": settings["sampler"], "num_inference_steps": n, "interpolation_steps": n,
            "cfg_truncation": settings.get("cfg_truncation", 1.0), "cache_interval": settings.get("cache_interval", 1),
            "cfg_truncation_keep": settings.get("cfg_truncation_keep", "cond")}


def deviation(latents: torch.Tensor, reference: torch.Tensor) -> dict:
    a, b = latents.double(), reference.double()
    mse = torch.mean((a - b) ** 2).item()
    span = (b.max() - b.min()).item()
    return {"rel_l2": ((a - b).norm() / b.norm()).item(),
            "psnr_db": 10 * math.log10(span ** 2 / mse) if mse > 0 else float("inf")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="the tiny configuration on the CPU (checks the script)")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS,
                    help=f"comma-separated (default {DEFAULT_SETTINGS}); all: {', '.join(SETTINGS)}")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per setting after its warm-up (default 1)")
    ap.add_argument("--budget-s", type=float, default=540.0, help="stop starting settings after this (default 540)")
    ap.add_argument("--no-compile", action="store_true", help="eager U-Net blocks and autoencoder")
    ap.add_argument("--no-cuda-graphs", action="store_true")
    ap.add_argument("--latents-dir", type=Path, default=ROOT / "outputs" / "bench_e2e",
                    help="where each setting's final latents are kept (default outputs/bench_e2e)")
    ap.add_argument("--out", type=Path, required=True, help="JSON results (written after every setting)")
    ap.add_argument("--append", action="store_true", help="keep the rows of an existing --out")
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    start = time.perf_counter()
    cuda = torch.cuda.is_available() and not args.tiny
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    names = [n for n in args.settings.split(",") if n]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        ap.error(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    report = json.loads(args.out.read_text()) if args.append and args.out.exists() else {"rows": {}}
    report.update({"what": "text -> 65-frame video, paper configuration, random weights", "tiny": args.tiny,
                   "device": torch.cuda.get_device_name() if cuda else "cpu", "dtype": str(dtype).replace("torch.", ""),
                   "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "reference": REFERENCE})
    args.latents_dir.mkdir(parents=True, exist_ok=True)
    tag = "tiny" if args.tiny else "paper"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def save():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))

    t = time.perf_counter()
    components = build_components(args.tiny, device, dtype, not args.no_compile and cuda,
                                  cuda and not args.no_cuda_graphs)
    report["build_s"] = time.perf_counter() - t
    from emu_video.pipelines import TextToVideoPipeline

    pipe = TextToVideoPipeline(components)

    def run(settings: dict, steps: int | None = None):
        sync()
        t0 = time.perf_counter()
        out = pipe(PROMPT, seed=0, progress=False, **call_kwargs(settings, steps, args.tiny))
        sync()
        return time.perf_counter() - t0, out

    for name in names:
        settings = SETTINGS[name]
        left = args.budget_s - (time.perf_counter() - start)
        prev = report["rows"].get(REFERENCE, {}).get("wall_s")
        estimate = None if prev is None else prev * settings["steps"] / SETTINGS[REFERENCE]["steps"] + 30
        if left < 30 or (estimate is not None and estimate * (1 + args.repeats) > left):
            report["rows"][name] = {"settings": settings, "skipped": f"time budget ({left:.0f} s left)"}
            print(f"{name}: skipped, {left:.0f} s left", flush=True)
            save()
            continue
        try:
            warm_s, _ = run(settings, steps=min(settings["steps"], 5))  # compiles and records every shape
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            walls = []
            for _ in range(args.repeats):
                wall, out = run(settings)
                walls.append(wall)
            row = {"settings": settings, "warmup_s": warm_s, "wall_s": statistics.median(walls), "walls_s": walls,
                   "frames": list(out.frames.shape)}
            if cuda:
                row.update(peak_alloc_gib=torch.cuda.max_memory_allocated() / GiB,
                           peak_reserved_gib=torch.cuda.max_memory_reserved() / GiB)
            latents = out.latents.float().cpu()
            torch.save(latents, args.latents_dir / f"{tag}-{name}.pt")
            ref_file = args.latents_dir / f"{tag}-{REFERENCE}.pt"
            if ref_file.exists():
                row.update(deviation(latents, torch.load(ref_file)))
        except Exception as exc:  # noqa: BLE001 - one failing setting must not lose the others
            row = {"settings": settings, "error": f"{type(exc).__name__}: {exc}"[:400],
                   "trace": traceback.format_exc()[-2000:]}
        report["rows"][name] = row
        save()
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in row.items() if k not in ("settings", "trace", "walls_s")), flush=True)
        if cuda:
            gc.collect()
            torch.cuda.empty_cache()
    ref = report["rows"].get(REFERENCE, {})
    lines = ["| setting | wall | speed-up vs " + REFERENCE + " | peak reserved | latents rel. L2 vs " + REFERENCE
             + " | PSNR |", "|---|---|---|---|---|---|"]
    for name, row in report["rows"].items():
        if "wall_s" not in row:
            lines.append(f"| {name} | {row.get('skipped') or row.get('error', '-')} | | | | |")
            continue
        speed = f"{ref['wall_s'] / row['wall_s']:.2f}x" if ref.get("wall_s") else "-"
        mem = f"{row['peak_reserved_gib']:.1f} GiB" if "peak_reserved_gib" in row else "-"
        dev = f"{row['rel_l2']:.4f}" if "rel_l2" in row else "-"
        psnr = f"{row['psnr_db']:.1f} dB" if "psnr_db" in row and math.isfinite(row["psnr_db"]) else "-"
        lines.append(f"| {name} | {row['wall_s']:.1f} s | {speed} | {mem} | {dev} | {psnr} |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
