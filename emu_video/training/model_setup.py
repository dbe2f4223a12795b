"""Where a stage's models come from: the previous stage's model folder, or parts for a new image model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emu_video.errors import UserError
from emu_video.io.jsonfile import read_json
from emu_video.models import VideoUNet, VideoUNetConfig, preset
from emu_video.models.text_encoder import TextEncoder, resolve_text_encoder_path
from emu_video.pipelines.model_index import INDEX_NAME, PRIMARY_LAYOUT, ModelIndex
from emu_video.training.config import TrainingConfig


@dataclass
class ModelSource:
    folder: Path | None  # the model folder the stage starts from (None: a new text-to-image model)
    index: ModelIndex
    vae_dir: Path
    text_specs: list[dict[str, Any]]  # model_index.json entries with absolute paths

    @property
    def unet_weights_file(self) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / self.index.unet / "diffusion_pytorch_model.safetensors"


def _absolute(spec: dict[str, Any], root: Path) -> dict[str, Any]:
    out = dict(spec)
    for key in ("path", "tokenizer"):
        if key in out and not Path(out[key]).is_absolute():
            out[key] = str((root / out[key]).resolve())
    return out


def model_source(cfg: TrainingConfig) -> ModelSource:
    m = cfg.model
    if m.init:
        folder = Path(m.init).resolve()
        if not (folder / INDEX_NAME).is_file():
            raise UserError(
                f"model.init={m.init} is not a model folder (no {INDEX_NAME}); train the previous stage first "
                "(its OUTPUT/model), or point model.init at a folder made by `emu-video init`"
            )
        index = ModelIndex.load(folder)
        index.text_encoders = _with_clause_tokens(index.text_encoders, m.clause_tokens)
        return ModelSource(folder, index, folder / index.vae, [_absolute(s, folder) for s in index.text_encoders])
    specs = [_absolute(s, Path.cwd()) for s in _with_clause_tokens(m.text_encoders, m.clause_tokens)]
    return ModelSource(None, ModelIndex(text_encoders=specs), Path(m.vae).resolve(), specs)


def _with_clause_tokens(specs: list[dict[str, Any]], clause_tokens: int) -> list[dict[str, Any]]:
    if clause_tokens < 0:
        return specs
    return [{**s, "clause_tokens": clause_tokens} if clause_tokens else {k: v for k, v in s.items() if k != "clause_tokens"}
            for s in specs]


def load_text_encoders(specs: list[dict[str, Any]], device, dtype=torch.float32) -> list[TextEncoder]:
    return [TextEncoder.from_spec(spec, device=device, dtype=dtype) for spec in specs]


def text_context_dims(specs: list[dict[str, Any]]) -> list[int]:
    """Hidden sizes of the text encoders, read from their configs (no weights loaded)."""
    dims = []
    for spec in specs:
        path = resolve_text_encoder_path(spec) / "config.json"
        if not path.is_file():
            raise UserError(f"text encoder config not found: {path}")
        d = read_json(path, "text encoder config")
        d = d.get("text_config", d) if "hidden_size" not in d and "d_model" not in d else d
        dims.append(int(d.get("hidden_size") or d.get("d_model")))
    return dims


def vae_latent_channels(vae_dir: Path) -> int:
    path = vae_dir / "config.json"
    if not path.is_file():
        raise UserError(f"no autoencoder at {vae_dir} (missing config.json); train one with the autoencoder stage")
    return int(read_json(path, "autoencoder config")["latent_channels"])


def new_unet_config(cfg: TrainingConfig, src: ModelSource) -> VideoUNetConfig:
    name = cfg.model.unet
    base = VideoUNetConfig.load(name).to_dict() if Path(name).suffix == ".json" else preset(name).to_dict()
    over = dict(cfg.model.unet_overrides)
    dims = text_context_dims(src.text_specs)
    base["latent_channels"] = vae_latent_channels(src.vae_dir)
    base["out_channels"] = None
    if "context_dims" not in over:
        base["context_dims"] = dims
        if len(dims) > 1 and "transformer_layers_per_block" not in over:
            base["transformer_layers_per_block"] = len(dims)
    if cfg.model.clause_tokens >= 0:
        base["clause_tokens"] = cfg.model.clause_tokens
    base.update(over)
    config = VideoUNetConfig.from_dict(base)
    if list(config.context_dims) != dims:
        raise UserError(f"U-Net context_dims {list(config.context_dims)} do not match the text encoders' {dims}")
    return config


def load_unet(cfg: TrainingConfig, src: ModelSource) -> VideoUNet:
    """The stage's U-Net in float32 on the CPU, with the weights the stage starts from."""
    if src.folder is None:
        torch.manual_seed(cfg.train.seed)  # the untrained temporal layers are the same in every restart
        return VideoUNet(new_unet_config(cfg, src))
    unet = VideoUNet.from_pretrained(src.folder / src.index.unet)
    wanted = cfg.model.clause_tokens
    if wanted >= 0 and wanted != unet.config.clause_tokens:
        if unet.config.clause_tokens:
            raise UserError(f"model.clause_tokens = {wanted}, but {src.folder} already reads "
                            f"{unet.config.clause_tokens}: clause attention can be added, not changed or removed")
        unet = unet.with_clause_tokens(wanted)
    layout = cfg.conditioning_layout()
    if layout is not None and cfg.model.temporal_init == "fresh":
        fresh_video_layers(unet, cfg.train.seed)
    elif layout is not None and layout.name != PRIMARY_LAYOUT:  # F's stages go on from the U-Net's own weights
        init = cfg.model.temporal_init
        if init == "identity":
            unet.reset_video_layers()
        elif init != "video":
            files = src.index.weight_files()
            if init not in files:
                raise UserError(f"model.temporal_init={init} but {src.folder} has no {init} weights "
                                f"(it has: {', '.join(['video', *files])})")
            unet.load_video_weights(src.folder / files[init])
    return unet


@torch.no_grad()
def fresh_video_layers(unet: VideoUNet, seed: int) -> None:
    """Every temporal weight (and the conditioning input channels) of `unet` as a new U-Net of its config
    draws them with `seed`, then identity: the same untrained temporal layers whatever `unet` held."""
    devnull = torch.random.fork_rng(devices=[])
    with devnull:
        torch.manual_seed(seed)
        new = dict(VideoUNet(unet.config).video_named_parameters())
    for name, p in unet.video_named_parameters():
        p.copy_(new[name])
    unet.reset_video_layers()
