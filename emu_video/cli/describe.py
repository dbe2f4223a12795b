"""`emu-video describe`: parameter counts of a U-Net configuration, built on the meta device (no weights)."""

from __future__ import annotations

import json

import torch

from emu_video.models import PRESETS, VideoUNet, VideoUNetConfig, preset


def register(sub) -> None:
    p = sub.add_parser(
        "describe",
        help="print a U-Net configuration's parameter counts as JSON",
        description=(
            "Build a U-Net configuration without allocating weights (meta device) and print one JSON object: "
            "total, frozen spatial and trainable temporal parameter counts, plus the configuration."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", default="paper", help=f"a preset: {', '.join(PRESETS)} (default: paper)")
    src.add_argument("--config-file", help="a U-Net config.json instead of a preset")
    p.set_defaults(func=run)


def run(args) -> int:
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
