"""`emu-video init`: a video model folder from a local diffusers Stable-Diffusion-style folder."""

from __future__ import annotations

from pathlib import Path

from emu_video.errors import UserError
from emu_video.io.jsonfile import read_json


def register(sub) -> None:
    p = sub.add_parser(
        "init",
        help="make a video model folder from a local diffusers text-to-image model",
        description=(
            "Read a local diffusers Stable Diffusion folder (unet/, vae/, text_encoder/, tokenizer/) and write "
            "an emu-video model folder: the U-Net's spatial weights are the text-to-image model's, its "
            "temporal layers start at identity and its conditioning input channels at zero, so the new video "
            "model equals the image model frame by frame until it is trained. Nothing is downloaded."
        ),
    )
    p.add_argument("--from-diffusers", required=True, metavar="PATH", help="local diffusers pipeline folder")
    p.add_argument("--out", required=True, metavar="DIR", help="output model folder (must not exist or be empty)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def init_from_diffusers(src: Path, out: Path, overwrite: bool = False) -> Path:
    from emu_video.models import from_diffusers_unet
    from emu_video.pipelines.components import (
        ModelIndex,
        copy_component,
        write_model_index,
    )

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UserError(f"diffusers folder not found: {src}")
    missing = [d for d in ("unet", "vae", "text_encoder", "tokenizer") if not (src / d).is_dir()]
    if missing:
        raise UserError(f"{src} is not a Stable-Diffusion-style diffusers folder: missing {', '.join(missing)}/")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} exists and is not empty (use --overwrite)")
    unet = from_diffusers_unet(src / "unet")
    unet.save_pretrained(out / "unet")
    for part in ("vae", "text_encoder", "tokenizer"):
        copy_component(src / part, out / part)
    max_length = 77
    tok_cfg = src / "tokenizer" / "tokenizer_config.json"
    if tok_cfg.exists():
        value = read_json(tok_cfg, "tokenizer config").get("model_max_length", 77)
        max_length = int(value) if isinstance(value, (int, float)) and value < 100_000 else 77
    enc_cfg = src / "text_encoder" / "config.json"
    if enc_cfg.exists():
        max_length = min(max_length, int(read_json(enc_cfg, "text encoder config").get("max_position_embeddings", max_length)))
    index = ModelIndex(
        text_encoders=[{"path": "text_encoder", "tokenizer": "tokenizer", "max_length": max_length}],
        description=f"initialised from the text-to-image model {src.name}; temporal layers untrained (identity)",
    )
    write_model_index(out, index)
    return out


def run(args) -> int:
    out = init_from_diffusers(Path(args.from_diffusers), Path(args.out), args.overwrite)
    print(f"wrote video model folder {out}")
    return 0
