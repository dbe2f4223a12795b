"""`emu-video describe`: parameter counts of a U-Net configuration, built on the meta device (no weights), or
what a model folder holds (its U-Net's counts, the layouts it has weights for, its sampling defaults)."""

from __future__ import annotations

import json

import torch

from emu_video.models import PRESETS, VideoUNet, VideoUNetConfig, preset


def register(sub) -> None:
    p = sub.add_parser(
        "describe",
        help="print a U-Net configuration's parameter counts (or a model folder's layouts) as JSON",
        description=(
            "Build a U-Net configuration without allocating weights (meta device) and print one JSON object: "
            "total, frozen spatial and trainable temporal parameter counts, plus the configuration. With "
            "--model DIR, the folder's U-Net, the conditioning layouts it has temporal weights for (the others "
            "are sampled with the weights of their fallback) and its sampling defaults."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", default="paper", help=f"a preset: {', '.join(PRESETS)} (default: paper)")
    src.add_argument("--config-file", help="a U-Net config.json instead of a preset")
    src.add_argument("--model", metavar="DIR", help="a model folder (model_index.json), e.g. the default model's")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.model:
        return describe_model(args.model)
    config = VideoUNetConfig.load(args.config_file) if args.config_file else preset(args.config)
    with torch.device("meta"):
        model = VideoUNet(config)
    counts = model.parameter_counts()
    out = {
        "config": args.config_file or args.config,
        **counts,
        "total_params_billions": round(counts["total_params"] / 1e9, 3),
        "spatial_params_billions": round(counts["spatial_params"] / 1e9, 3),
        "temporal_params_billions": round(counts["temporal_params"] / 1e9, 3),
        "in_channels": config.in_channels,
        "out_channels": config.out_channels,
        "unet_config": config.to_dict(),
    }
    print(json.dumps(out, indent=2))
    return 0


def describe_model(folder: str) -> int:
    from pathlib import Path

    from emu_video.diffusion.layouts import LAYOUTS
    from emu_video.pipelines.components import SAMPLING_DEFAULTS, resolve_model_dir
    from emu_video.pipelines.model_index import ModelIndex

    root = resolve_model_dir(folder)
    index = ModelIndex.load(root)
    config = VideoUNetConfig.load(Path(root) / index.unet / "config.json")
    with torch.device("meta"):
        counts = VideoUNet(config).parameter_counts()
    layouts = {}
    for name, cls in LAYOUTS.items():
        entry = index.layouts.get(name)
        if entry is not None:
            layouts[name] = {"weights": entry.get("weights", f"{index.unet} (its temporal layers)"),
                             "prediction_type": entry["schedule"].get("prediction_type"),
                             "zero_terminal_snr": entry["schedule"].get("zero_terminal_snr"),
                             **({"options": entry["options"]} if entry.get("options") else {})}
        elif cls.fallback in index.layouts:
            layouts[name] = {"weights": f"none of its own: sampled with the {cls.fallback} weights"}
        else:
            layouts[name] = {"weights": "none: cannot be sampled with this folder"}
    out = {"model": str(root), "description": index.description, **counts, "layouts": layouts,
           "defaults": {**SAMPLING_DEFAULTS, **index.defaults}}
    print(json.dumps(out, indent=2))
    return 0
