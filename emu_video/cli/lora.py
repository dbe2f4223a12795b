"""LoRA adapters on the command line: `--lora DIR --lora-scale S` (repeatable) for the generating commands,
and `emu-video merge-lora MODEL_DIR ADAPTER... --out NEW_MODEL_DIR`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from emu_video.errors import UserError


def add_lora_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lora", metavar="DIR", action="append", default=[],
                   help="a LoRA adapter folder (adapter_model.safetensors + adapter_config.json, e.g. a training "
                        "run's OUTPUT/lora) merged into the model before sampling; repeat for several")
    p.add_argument("--lora-scale", metavar="S", type=float, action="append", default=[],
                   help="the strength of the --lora given in the same position (default 1; 0 = without it)")


def lora_specs(paths: list[str], scales: list[float]) -> list[tuple[Path, float]]:
    """(adapter, scale) pairs: the i-th scale goes with the i-th adapter, missing scales are 1."""
    if len(scales) > len(paths):
        raise UserError(f"{len(scales)} --lora-scale values for {len(paths)} --lora adapter(s): give one scale per "
                        "adapter, in the same order")
    for s in scales:
        if not math.isfinite(s):
            raise UserError(f"--lora-scale must be a finite number, got {s}")
    for p in paths:
        if not Path(p).exists():
            raise UserError(f"--lora {p}: no such folder or file")
    return [(Path(p), scales[k] if k < len(scales) else 1.0) for k, p in enumerate(paths)]


def register(sub) -> None:
    m = sub.add_parser(
        "merge-lora", help="merge LoRA adapters into a new model folder",
        description="Write a new model folder with LoRA adapters merged into its weights (each into the weights "
                    "of the layout it was trained for). It loads like any model folder: emu-video generate "
                    "--model NEW_MODEL_DIR ...",
    )
    m.add_argument("model", metavar="MODEL_DIR", help="the model folder the adapters were trained on")
    m.add_argument("adapters", metavar="ADAPTER", nargs="+", help="adapter folders (e.g. a run's OUTPUT/lora)")
    m.add_argument("--out", metavar="NEW_MODEL_DIR", required=True, help="the merged model folder to write")
    m.add_argument("--scale", metavar="S", type=float, action="append", default=[],
                   help="the strength of each adapter, in their order (repeat; default 1)")
    m.set_defaults(func=run_merge)


def run_merge(args) -> int:
    from emu_video.pipelines.merge_lora import merge_lora_folder

    if not Path(args.model).is_dir():
        raise UserError(f"model folder not found: {args.model}")
    specs = lora_specs(args.adapters, args.scale)
    out = merge_lora_folder(args.model, specs, args.out)
    print(f"wrote {out} ({len(specs)} adapter(s) merged)")
    return 0
