"""`emu-video train` (one stage from a config file) and `emu-video prepare-data` (manifests, shards, caches)."""

from __future__ import annotations

import json
from pathlib import Path

from emu_video.errors import UserError

TRAIN_HELP = """\
Train one stage of the system from a stage config: a TOML file, or the name of a packaged stage
(autoencoder, text_to_image, video_256, video_512, video_512_16f, video_hq, interpolation; see
--list-stages). Any setting can be overridden as key=value with a dotted key, e.g.
  emu-video train --config video_256 data.manifest=data/videos.jsonl model.init=runs/t2i/model \\
      train.output_dir=runs/video_256 train.batch_size=4
Run the same command again to resume from the newest checkpoint in train.output_dir. Scale out with
  torchrun --nproc_per_node 8 -m emu_video.cli.main train --config ... parallel.strategy=fsdp
On one GPU, train.compile=blocks and train.cuda_graph=true (the step replayed from one CUDA graph) take
the kernel launches off the host (3.1x the steps per second with the tiny U-Net on an H100; docs/training.md).
The trained model folder is written to OUTPUT/model (for `emu-video generate --model`)."""

PREPARE_HELP = """\
Prepare training data:
  manifest from a folder:  emu-video prepare-data --folder videos/ [--out videos/manifest.jsonl]
  tar shards:              emu-video prepare-data --manifest videos.jsonl --shards shards/
  latent cache:            emu-video prepare-data --manifest videos.jsonl --cache cache/ --model MODEL_DIR
                               [--kind video --resolution 256 --frames 8 --fps 8]
                       or  emu-video prepare-data --config video_256 --cache cache/ [key=value ...]
then train with data.cache=cache/ (the autoencoder and text encoders are not loaded)."""


def register(sub) -> None:
    import argparse

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("train", help="train one stage (autoencoder, text-to-image, video, interpolation)",
                       description=TRAIN_HELP, formatter_class=fmt)
    p.add_argument("--config", metavar="FILE_OR_STAGE", help="stage config file or packaged stage name")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings over the config file")
    p.add_argument("--export", action="store_true",
                   help="only write OUTPUT/model from the newest checkpoint (no training)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    p.add_argument("--list-stages", action="store_true", help="list the packaged stage configs and exit")
    p.set_defaults(func=run_train)

    q = sub.add_parser("prepare-data", help="make manifests, tar shards or latent caches for training",
                       description=PREPARE_HELP, formatter_class=fmt)
    q.add_argument("--folder", metavar="DIR", help="make a manifest of the media files under DIR")
    q.add_argument("--out", metavar="FILE.jsonl", help="manifest to write (default: DIR/manifest.jsonl)")
    q.add_argument("--captions", choices=("sidecar", "filename", "none"), default="sidecar",
                   help="captions from sidecar .txt files (default), file names, or none")
    q.add_argument("--manifest", action="append", default=[], metavar="FILE", help="input manifest (repeatable)")
    q.add_argument("--shards", metavar="DIR", help="write WebDataset tar shards of the manifest rows")
    q.add_argument("--per-shard", type=int, default=1000, help="samples per tar shard (default 1000)")
    q.add_argument("--cache", metavar="DIR", help="write a latent + text-embedding cache")
    q.add_argument("--model", metavar="DIR", help="model folder whose autoencoder and text encoders encode")
    q.add_argument("--config", metavar="FILE_OR_STAGE", help="stage config giving model, resolution and clips")
    q.add_argument("--kind", choices=("video", "image"), help="media kind (default video; image for images)")
    q.add_argument("--resolution", type=int)
    q.add_argument("--frames", type=int)
    q.add_argument("--fps", type=float)
    q.add_argument("--clip-start", choices=("random", "first", "center"))
    q.add_argument("--batch-size", type=int, default=8)
    q.add_argument("--workers", type=int, default=0, help="decoding worker processes")
    q.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="dtype of the stored latents and embeddings")
    q.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    q.add_argument("--overwrite", action="store_true")
    q.add_argument("overrides", nargs="*", metavar="key=value", help="settings over --config")
    q.set_defaults(func=run_prepare)


def run_train(args) -> int:
    from emu_video.training.config import load_config, packaged_stages

    if args.list_stages:
        from emu_video.training.config import STAGE_DIR

        for name in packaged_stages():
            print(f"{name:28s} {STAGE_DIR / (name + '.toml')}")
        recipes = STAGE_DIR.parents[2] / "configs" / "stages"  # a source checkout's recipes (Shapes World)
        for path in sorted(recipes.glob("*/*.toml")):
            print(f"{path.parent.name + '/' + path.stem:28s} {path}  (use the path)")
        return 0
    if not args.config:
        raise UserError("give a stage config: emu-video train --config FILE_OR_STAGE [key=value ...]")
    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(cfg.to_toml(), end="")
        return 0
    from emu_video.training.parallel import Parallel
    from emu_video.training.trainer import Trainer

    par = Parallel(cfg.parallel.strategy, cfg.parallel.backend, cfg.train.device)
    try:
        trainer = Trainer(cfg, par)
        if args.export:
            if trainer.step == 0:
                raise UserError(f"no checkpoint in {cfg.train.output_dir}/checkpoints to export")
            path = trainer.export()
            if par.is_main:
                print(f"wrote {path} (step {trainer.step})")
            return 0
        trainer.run()
        return 0
    finally:
        par.close()


def _cache_config(args):
    from emu_video.training.config import load_config

    overrides = list(args.overrides)
    if args.config:
        base = args.config
    else:
        if not args.model:
            raise UserError("a cache needs --model DIR (or --config STAGE)")
        base = "text_to_image" if args.kind == "image" else "video_256"
    if args.model:
        overrides.append(f"model.init={json.dumps(str(Path(args.model)))}")
    if args.manifest:
        overrides.append(f"data.manifest={json.dumps([str(m) for m in args.manifest])}")
    for key, value in (("resolution", args.resolution), ("num_frames", args.frames), ("fps", args.fps)):
        if value is not None:
            overrides.append(f"data.{key}={value}")
    if args.clip_start:
        overrides.append(f"data.clip_start={args.clip_start}")
    overrides += ["data.cache=\"\"", f"train.output_dir={json.dumps(str(args.cache))}"]
    if args.kind and args.config:
        cfg = load_config(base, overrides)
        if cfg.media_kind != args.kind:
            raise UserError(f"--kind {args.kind} does not match the {cfg.stage.kind} stage of {args.config}")
    return load_config(base, overrides)


def run_prepare(args) -> int:
    from emu_video.data.manifest import read_manifests, scan_folder, write_manifest

    for name, least in (("per_shard", 1), ("batch_size", 1), ("workers", 0)):
        if getattr(args, name) < least:
            raise UserError(f"--{name.replace('_', '-')} must be at least {least}, got {getattr(args, name)}")
    did = False
    if args.folder:
        rows = scan_folder(args.folder, args.kind or "video", args.captions)
        out = Path(args.out) if args.out else Path(args.folder) / "manifest.jsonl"
        write_manifest(out, rows)
        bad = [r for r in rows if r.problem]
        empty = sum(1 for r in rows if not r.caption and not r.problem)
        notes = [f"{empty} without a caption"] if empty else []
        if bad:
            notes.append(f"{len(bad)} skipped: {bad[0].problem}" + (" ..." if len(bad) > 1 else ""))
        print(f"wrote {out}: {len(rows) - len(bad)} files" + (f" ({'; '.join(notes)})" if notes else ""))
        args.manifest = args.manifest or [str(out)]
        did = True
    if args.shards:
        from emu_video.data.shards import write_shards

        if not args.manifest:
            raise UserError("--shards needs --manifest FILE (or --folder DIR)")
        paths = write_shards(read_manifests(args.manifest), args.shards, args.per_shard)
        print(f"wrote {len(paths)} shard(s) to {args.shards}")
        did = True
    if args.cache:
        import torch

        from emu_video.training.precompute import precompute_cache

        cfg = _cache_config(args)
        dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.dtype]
        info = precompute_cache(cfg, args.cache, batch_size=args.batch_size, num_workers=args.workers, dtype=dtype,
                                device=args.device, overwrite=args.overwrite)
        skipped = sum(info["skipped"].values())
        print(f"wrote {args.cache}: {info['count']} items, latents {info['latent_shape']}"
              + (f", {skipped} skipped {info['skipped']}" if skipped else ""))
        did = True
    if not did:
        raise UserError("nothing to do: give --folder DIR, --shards DIR or --cache DIR (see --help)")
    return 0
