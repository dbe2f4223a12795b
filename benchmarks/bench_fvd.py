"""Time I3D feature extraction for FVD (random weights; speed does not depend on them) and the full FVD.

    python benchmarks/bench_fvd.py --device cuda --videos 512 --out fvd-bench.json
    python benchmarks/bench_fvd.py --device cpu --videos 4 --batch-sizes 2 --dtypes fp32   # smoke run

For each dtype (bf16, fp32) and batch size, N synthetic 16x224x224 clips (uint8, already on the device) go through
the same path `emu-video evaluate` uses: bilinear resize from 256x256 to 224x224 and [-1, 1] scaling, then I3D.
Reports clips per second and the time 2,048 clips would take (extrapolated, or measured with --full), plus the
float64 Fréchet distance on 2,048 x 400 features. Decoding mp4 files is not included (see docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from emu_video.evaluation.frechet import FeatureStats, frechet_from_stats  # noqa: E402
from emu_video.evaluation.i3d import InceptionI3d  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _prepare(batch_uint8: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 on the device -> (B, 3, T, size, size) in [-1, 1], as i3d_preprocess does per clip."""
    b, t, h, w, _ = batch_uint8.shape
    x = batch_uint8.permute(0, 1, 4, 2, 3).reshape(b * t, 3, h, w).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (2.0 * x / 255.0 - 1.0).reshape(b, t, 3, size, size).permute(0, 2, 1, 3, 4)
    return x.to(dtype).contiguous()


@torch.no_grad()
def run(model, videos: int, batch: int, frames: int, src: int, size: int, device, dtype) -> dict:
    clip = torch.randint(0, 256, (batch, frames, src, src, 3), dtype=torch.uint8, device=device)
    model(_prepare(clip, size, dtype))  # warm-up (cuDNN autotune, allocator)
    _sync(device)
    feats, start, done = [], time.perf_counter(), 0
    while done < videos:
        n = min(batch, videos - done)
        feats.append(model(_prepare(clip[:n], size, dtype)).float())
        done += n
    _sync(device)
    seconds = time.perf_counter() - start
    out = {"batch": batch, "videos": videos, "seconds": round(seconds, 3), "videos_per_s": round(videos / seconds, 2),
           "seconds_per_2048": round(2048 * seconds / videos, 1)}
    if device.type == "cuda":
        out["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        torch.cuda.reset_peak_memory_stats(device)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--videos", type=int, default=256, help="clips timed per setting (default 256)")
    ap.add_argument("--batch-sizes", default="8,16,32,64")
    ap.add_argument("--dtypes", default="bf16,fp32")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--source-size", type=int, default=256, help="decoded frame size before the resize")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--full", action="store_true", help="also measure 2,048 clips at the fastest setting")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "threads": torch.get_num_threads()}
    results = []
    for name in args.dtypes.split(","):
        model = InceptionI3d().eval().to(device, DTYPES[name])
        for b in (int(x) for x in args.batch_sizes.split(",")):
            r = {"dtype": name, **run(model, args.videos, b, args.frames, args.source_size, args.size, device,
                                      DTYPES[name])}
            print(json.dumps(r), flush=True)
            results.append(r)
    best = max(results, key=lambda r: r["videos_per_s"])
    summary = {"fastest": best}
    if args.full:
        model = InceptionI3d().eval().to(device, DTYPES[best["dtype"]])
        summary["measured_2048"] = run(model, 2048, best["batch"], args.frames, args.source_size, args.size,
                                       device, DTYPES[best["dtype"]])
    real, fake = FeatureStats(), FeatureStats()
    real.add(torch.randn(2048, 400, dtype=torch.float64))
    fake.add(torch.randn(2048, 400, dtype=torch.float64) + 0.1)
    start = time.perf_counter()
    fvd = frechet_from_stats(real, fake)
    summary["frechet_seconds"] = round(time.perf_counter() - start, 3)
    summary["frechet_value_check"] = round(fvd, 3)
    est = summary.get("measured_2048", best)["seconds_per_2048"] + summary["frechet_seconds"]
    summary["fvd_2048_seconds_features_plus_frechet"] = round(est, 1)
    report = {"env": env, "settings": vars(args) | {"out": str(args.out) if args.out else None},
              "results": results, "summary": summary}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
