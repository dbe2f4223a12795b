"""Where the time of one U-Net step goes: GPU kernel time by kind (GEMM, convolution, attention, fused
elementwise/normalisation, copies), against the FLOPs of each kind.

    python benchmarks/profile_unet.py --config paper --batch 3 --frames 37 --out profile.json
    python benchmarks/profile_unet.py --train --config sd15 --batch 8 --frames 16 --latent 32

It builds our U-Net with random weights, optimises it as `VideoUNet.optimize_for_inference` does (bf16,
channels-last, compiled blocks; CUDA graphs only with --cuda-graphs, since a replayed graph hides its kernels
from some profiler builds), times a few steps and profiles two. With --train a step is a training step of
the video stage as `bench_unet.py` times it: frozen spatial weights in bf16, temporal layers trained in
float32 with fused AdamW under bf16 autocast (--checkpointing adds activation checkpointing). `--inductor-config name=value` (repeatable)
tries inductor settings, e.g. `coordinate_descent_tuning=True`, and `--inductor-mode` a torch.compile mode.

Several variants may run at once on one GPU (their compiles overlap): give each the same `--sync-dir` and
`--sync-n`; each compiles and warms up, waits until all have, then times and profiles under an exclusive
lock, so that no timing overlaps another process's GPU work.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fcntl
import gc
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from benchlib_measure import Env, build_ours, ours_inputs, time_steps  # noqa: E402

# Kernel kinds, tried in order on the kernel's name (lower case).
KINDS = (
    ("attention", ("sdpa", "flash", "fmha", "attention", "attn")),
    ("convolution", ("fprop", "dgrad", "wgrad", "implicit_gemm", "cudnn_conv", "frames_conv", "conv2d_", "conv3d_")),
    ("gemm", ("nvjet", "gemm", "cutlass", "cublas", "xmma", "triton_tem", "triton_mm")),
    ("fused elementwise / norm (triton)", ("triton_",)),
    ("copy / layout", ("copy", "cat", "transpose", "memcpy", "memset")),
    ("norm (aten)", ("norm",)),
    ("elementwise (aten)", ("elementwise", "vectorized", "reduce")),
)
# FLOP counter ops -> kinds
FLOP_KINDS = {"addmm": "gemm", "mm": "gemm", "bmm": "attention", "convolution": "convolution",
              "convolution_backward": "convolution", "frames_attention": "attention",
              "frames_attention_backward": "attention", "frames_conv": "convolution"}
for _sdpa in ("flash", "efficient", "cudnn"):
    FLOP_KINDS[f"_scaled_dot_product_{_sdpa}_attention"] = FLOP_KINDS[f"_scaled_dot_product_{_sdpa}_attention_backward"] = "attention"


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def flops_by_kind(fn, train: bool = False) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, (contextlib.nullcontext() if train else torch.inference_mode()):
        fn()
    out: dict[str, float] = defaultdict(float)
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        name = str(op).split(".")[1] if "." in str(op) else str(op)
        out[FLOP_KINDS.get(name, "other")] += n
    return dict(out)


def kernel_table(prof, steps: int) -> list[dict]:
    """Device time per kernel (ms per step), largest first."""
    rows = []
    for evt in prof.key_averages():
        if getattr(evt, "device_type", None) != torch.autograd.DeviceType.CUDA:
            continue  # CPU-side records (e.g. a Triton kernel's launch) would count a kernel twice
        t = getattr(evt, "self_device_time_total", None)
        if t is None:
            t = getattr(evt, "self_cuda_time_total", 0.0)
        if not t or evt.key.startswith(("aten::", "cuda", "Torch-Compiled", "## ", "Command Buffer")):
            continue
        rows.append({"kernel": evt.key, "kind": kind_of(evt.key), "ms": t / 1e3 / steps, "calls": evt.count // steps})
    return sorted(rows, key=lambda r: -r["ms"])


def trace_kernel(prof, substring: str, steps: int) -> list[dict]:
    """Operators whose kernels' names contain `substring`, grouped by operator, input shapes and parents."""
    groups: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0])
    for evt in prof.events():
        hits = [k for k in getattr(evt, "kernels", []) if substring in k.name]
        if not hits:
            continue
        chain, parent = [], evt.cpu_parent
        while parent is not None and len(chain) < 4:
            chain.append(parent.name)
            parent = parent.cpu_parent
        key = (evt.name, str(evt.input_shapes), " <- ".join(chain))
        groups[key][0] += sum(k.duration for k in hits)
        groups[key][1] += 1
    rows = [{"op": op, "shapes": shapes, "parents": chain, "ms": us / 1e3 / steps, "calls": n // steps}
            for (op, shapes, chain), (us, n) in groups.items()]
    return sorted(rows, key=lambda r: -r["ms"])


def mark_ready(sync_dir: Path | None, label: str) -> None:
    """Count this process as ready (also when it failed: the others must not wait for it)."""
    if sync_dir is not None:
        sync_dir.mkdir(parents=True, exist_ok=True)
        (sync_dir / f"ready.{os.getpid()}").write_text(label)


@contextlib.contextmanager
def exclusive(sync_dir: Path | None, sync_n: int, label: str, wait_s: float):
    """Wait until `sync_n` processes are ready (files in sync_dir), then hold an exclusive lock."""
    if sync_dir is None:
        yield
        return
    mark_ready(sync_dir, label)
    deadline = time.time() + wait_s
    while len(list(sync_dir.glob("ready.*"))) < sync_n and time.time() < deadline:
        time.sleep(2)
    with open(sync_dir / "lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except BaseException:
        mark_ready(args.sync_dir, "failed")
        raise


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="paper", help="U-Net preset (paper, sd15, tiny)")
    p.add_argument("--batch", type=int, default=3, help="batch (3 = the guidance passes)")
    p.add_argument("--frames", type=int, default=37)
    p.add_argument("--latent", type=int, default=64, help="latent height = width")
    p.add_argument("--text-len", type=int, default=77)
    p.add_argument("--compile", default="blocks", choices=("blocks", "full", "none"))
    p.add_argument("--inductor-mode", default="default",
                   help="torch.compile mode, e.g. max-autotune-no-cudagraphs")
    p.add_argument("--inductor-config", action="append", default=[], metavar="NAME=VALUE",
                   help="set torch._inductor.config.NAME (repeatable)")
    p.add_argument("--cuda-graphs", action="store_true", help="replay the step from a CUDA graph (inference)")
    p.add_argument("--train", action="store_true", help="profile a training step (temporal layers trained)")
    p.add_argument("--checkpointing", action="store_true", help="--train with activation checkpointing")
    p.add_argument("--memory-budget", type=float, default=None,
                   help="--train with compiled regions keeping this share of activations (set_compile memory_budget)")
    p.add_argument("--no-frames-kernel", action="store_true",
                   help="temporal self-attention through SDPA instead of the fused short-sequence kernel")
    p.add_argument("--no-conv-kernel", action="store_true",
                   help="inference: temporal convolutions through cuDNN instead of the implicit-GEMM kernel")
    p.add_argument("--no-channels-last-grad", action="store_true",
                   help="training: temporal convolutions take their output gradient in whatever layout it comes")
    p.add_argument("--blocks-only", action="store_true",
                   help="--compile blocks without the resamplers and the input/output heads")
    p.add_argument("--gc-freeze", action="store_true",
                   help="gc.freeze() after the warm-up: Python's cyclic collector then skips the objects that exist "
                        "by then (a host-bound step's time varies with full collections over them)")
    p.add_argument("--iters", type=int, default=6, help="timed steps")
    p.add_argument("--profile-steps", type=int, default=2)
    p.add_argument("--trace-kernel", default=None, metavar="SUBSTRING",
                   help="also print which operators (with input shapes and their parents) launch the kernels "
                        "whose names contain SUBSTRING")
    p.add_argument("--label", default=None, help="name of this variant in the output")
    p.add_argument("--sync-dir", type=Path, default=None)
    p.add_argument("--sync-n", type=int, default=1)
    p.add_argument("--sync-wait-s", type=float, default=480.0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=None, help="JSON output")
    return p.parse_args(argv)


def training_step(args: argparse.Namespace, env: Env):
    """A training step of the video stage (as bench_unet.py's `train` rows), and a fwd+bwd of one sample for
    FLOP counts (a step's FLOPs are linear in the batch; counted without recomputation)."""
    import torch.nn.functional as F

    model = build_ours(args.config, env, torch.float32)
    model.train().freeze_spatial().to_mixed_precision(torch.bfloat16, torch.float32).to_channels_last()
    params = model.video_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4, fused=env.cuda)
    model.enable_gradient_checkpointing(False)  # FLOPs without recomputation; `counted` switches it on after

    def batch(n):
        x, t, ctx = ours_inputs(model, env, n, args.frames, args.latent, args.text_len)
        target = torch.randn(n, model.config.out_channels, args.frames, args.latent, args.latent, device=env.device)
        return x.float(), t, [c.float() for c in ctx], target

    def fwd_bwd(x, t, ctx, target):
        with env.autocast():
            out = model(x, t, ctx)
        F.mse_loss(out.float(), target).backward()

    inputs = batch(args.batch)

    def step():
        opt.zero_grad(set_to_none=True)
        fwd_bwd(*inputs)
        opt.step()

    def counted():
        try:
            fwd_bwd(*batch(1))
        finally:
            model.enable_gradient_checkpointing(args.checkpointing)
            opt.zero_grad(set_to_none=True)

    return model, step, counted, args.batch


def run(args: argparse.Namespace) -> int:
    import torch._inductor.config as inductor_config

    for item in args.inductor_config:
        name, _, value = item.partition("=")
        *parents, leaf = name.split(".")
        target = inductor_config
        for part in parents:
            target = getattr(target, part)
        setattr(target, leaf, parse_value(value))
    label = args.label or "+".join(
        (["train"] if args.train else []) + (["ckpt"] if args.checkpointing else [])
        + ([f"budget{args.memory_budget}"] if args.memory_budget is not None else [])
        + [args.compile, args.inductor_mode, *args.inductor_config] + (["sdpa-temporal"] if args.no_frames_kernel else [])
        + (["cudnn-temporal-conv"] if args.no_conv_kernel else [])
        + (["any-grad-layout"] if args.no_channels_last_grad else []) + (["blocks-only"] if args.blocks_only else [])
        + (["gc-freeze"] if args.gc_freeze else []))
    env = Env(args.device, torch.bfloat16 if args.device != "cpu" else torch.float32)
    if env.cuda:
        torch.backends.cudnn.benchmark = True
    if args.train:
        model, fn, flop_fn, scale = training_step(args, env)
    else:
        model = build_ours(args.config, env)
        x, t, ctx = ours_inputs(model, env, args.batch, args.frames, args.latent, args.text_len)
        fn = flop_fn = lambda: model(x, t, ctx)  # noqa: E731
        scale = 1
    kinds_flops = {k: v * scale for k, v in flops_by_kind(flop_fn, args.train).items()}
    flops = sum(kinds_flops.values())
    kwargs = {} if args.inductor_mode == "default" else {"inductor_mode": args.inductor_mode}
    if args.memory_budget is not None:
        kwargs["memory_budget"] = args.memory_budget
    if not args.train:
        model.optimize_for_inference(dtype=env.dtype, channels_last=True, compile="none",
                                     cuda_graphs=args.cuda_graphs and env.cuda)
    if args.no_frames_kernel or args.no_conv_kernel:
        model.set_fast_paths(True, frames_kernel=not args.no_frames_kernel, conv_kernel=not args.no_conv_kernel)
    if args.no_channels_last_grad:
        from emu_video.models.temporal import TemporalConv

        TemporalConv.channels_last_grad = False
    if args.compile != "none":
        model.set_compile(args.compile, dynamic=False, **kwargs)  # static shapes, as optimize_for_inference
    if args.blocks_only and args.compile == "blocks":  # as before the resamplers and heads were regions too
        from emu_video.models.fast import uncompile_regions
        from emu_video.models.resnet import Downsample, Upsample

        uncompile_regions([m for m in model.modules() if isinstance(m, (Downsample, Upsample))])
        model._compiled_heads = None
    t0 = time.perf_counter()
    with contextlib.nullcontext() if args.train else torch.inference_mode():
        fn()
        env.sync()
        first_s = time.perf_counter() - t0
        for _ in range(2):
            fn()
        env.sync()
        print(f"[{label}] compiled and warm after {time.perf_counter() - t0:.0f} s", flush=True)
        with exclusive(args.sync_dir, args.sync_n, label, args.sync_wait_s):
            env.reset_peak()
            if args.gc_freeze:  # everything alive now (compiled code, caches) leaves the collector's generations
                gc.collect()
                gc.freeze()
            timing = time_steps(env, fn, 1, args.iters, max_seconds=60)
            peak = env.peak()
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if env.cuda else [])
            with profile(activities=acts, record_shapes=args.trace_kernel is not None) as prof:
                for _ in range(args.profile_steps):
                    fn()
                env.sync()
    kernels = kernel_table(prof, args.profile_steps) if env.cuda else []
    by_kind: dict[str, float] = defaultdict(float)
    for r in kernels:
        by_kind[r["kind"]] += r["ms"]
    total_kernel_ms = sum(by_kind.values())
    tflops = flops / (timing["ms"] / 1e3) / 1e12
    print(f"[{label}] {args.config} B={args.batch} T={args.frames} {args.latent}x{args.latent}: "
          f"{timing['ms']:.1f} ms/step, {tflops:.0f} TFLOP/s, first call {first_s:.0f} s, peak {peak}")
    print(f"  kernel time {total_kernel_ms:.1f} ms/step (step {timing['ms']:.1f} ms)")
    print(f"  {'kind':36s} {'ms/step':>9s} {'share':>6s} {'TFLOP':>8s} {'TFLOP/s':>8s}")
    for kind, ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        f = kinds_flops.get(kind, 0.0)
        rate = f"{f / (ms / 1e3) / 1e12:8.0f}" if f and ms else "        "
        print(f"  {kind:36s} {ms:9.1f} {100 * ms / total_kernel_ms:5.1f}% {f / 1e12:8.2f} {rate}")
    print("  top kernels:")
    for r in kernels[:25]:
        print(f"    {r['ms']:8.2f} ms  x{r['calls']:<4d} {r['kind'][:12]:12s} {r['kernel'][:110]}")
    traced = trace_kernel(prof, args.trace_kernel, args.profile_steps) if args.trace_kernel and env.cuda else []
    if traced:
        print(f"  operators launching '{args.trace_kernel}':")
        for r in traced[:20]:
            print(f"    {r['ms']:8.2f} ms  x{r['calls']:<4d} {r['op']} {r['shapes']}  <- {r['parents']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "label": label, "train": args.train, "checkpointing": args.checkpointing,
            "memory_budget": args.memory_budget, "config": args.config, "batch": args.batch, "frames": args.frames, "latent": args.latent,
            "device": torch.cuda.get_device_name() if env.cuda else "cpu", "torch": torch.__version__,
            "command": " ".join(sys.argv), "ms": timing["ms"], "ms_all": timing["ms_all"], "tflops": tflops,
            "flops": flops, "first_call_s": first_s, **peak, "flops_by_kind": kinds_flops,
            "kernel_ms_by_kind": dict(by_kind), "kernels": kernels[:80], "traced": traced[:40],
        }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
