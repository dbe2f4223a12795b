"""LoRA adapters for the video U-Net, through peft.

Which layers get adapters: the Linear layers of the U-Net's transformers (attention projections q, k, v and
out, the feed-forward layers, and proj_in / proj_out where they are Linear), of the temporal transformers
("temporal"), of the spatial ones ("spatial") or of both. Convolutions (ResNets, temporal convolutions, the
conditioning input channels) keep their weights.

Files are peft's own layout: a folder with `adapter_model.safetensors` (tensors named as `PeftModel` names
them, `base_model.model.<module>.lora_A.weight`) and `adapter_config.json` (a `LoraConfig`), so that
`PeftModel.from_pretrained(unet, folder)` loads it. The safetensors metadata also says which stage made it
(`emu_video.layout`: the conditioning layout whose temporal weights it adapts; empty for a text-to-image
stage). For sampling, adapters are merged into the weights (`merge_adapters`): the network then has its
plain layers again, so every fast path (fused projections, Triton kernels, compiled blocks, CUDA graphs)
runs as without adapters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from emu_video.errors import UserError

LORA_TARGETS = ("temporal", "spatial", "both")
WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
PEFT_PREFIX = "base_model.model."  # how PeftModel names the wrapped model's weights in its files
TRAINING_ADAPTER = "default"  # peft's default adapter name (the one a PeftModel saves at the folder's root)
LAYOUT_KEY = "emu_video.layout"
TARGETS_KEY = "emu_video.targets"


def require_peft():
    try:
        import peft
    except ImportError:
        raise UserError("LoRA needs the peft package: pip install 'emu-video[lora]'") from None
    return peft


def target_modules(unet: nn.Module, targets: str) -> list[str]:
    """Names of the Linear layers inside the spatial and/or temporal transformers of `unet`."""
    from emu_video.models.attention import SpatialTransformer
    from emu_video.models.temporal import TemporalTransformer

    if targets not in LORA_TARGETS:
        raise UserError(f"LoRA targets {targets!r}: choose one of {', '.join(LORA_TARGETS)}")
    kinds = {"temporal": (TemporalTransformer,), "spatial": (SpatialTransformer,),
             "both": (SpatialTransformer, TemporalTransformer)}[targets]
    names = []
    for name, module in unet.named_modules():
        if isinstance(module, kinds):
            names += [f"{name}.{sub}" for sub, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise UserError(f"this U-Net has no {targets} transformer layers to put LoRA adapters on")
    return names


def lora_config(unet: nn.Module, rank: int, alpha: float = 0.0, targets: str = "temporal"):
    """peft's LoraConfig for `rank`-`rank` adapters on the `targets` layers; alpha 0 means alpha = rank
    (the adapter's update is B @ A times alpha / rank)."""
    peft = require_peft()
    if rank < 1:
        raise UserError(f"LoRA rank must be at least 1, got {rank}")
    return peft.LoraConfig(r=int(rank), lora_alpha=float(alpha or rank), lora_dropout=0.0,
                           target_modules=target_modules(unet, targets))


def add_adapter(unet: nn.Module, config, name: str = TRAINING_ADAPTER) -> list[tuple[str, nn.Parameter]]:
    """Put `config`'s adapters into `unet` (in place) and make them its only trainable weights; returns them.
    The base layers' weights stay where they are (`<layer>.base_layer.weight`)."""
    peft = require_peft()
    peft.inject_adapter_in_model(config, unet, adapter_name=name)
    unet.requires_grad_(False)
    named = [(n, p) for n, p in unet.named_parameters() if "lora_" in n]
    for _, p in named:
        p.requires_grad_(True)
    return named


def adapter_tensors(unet: nn.Module, weights: dict[str, torch.Tensor] | None = None,
                    name: str = TRAINING_ADAPTER) -> dict[str, torch.Tensor]:
    """The adapter `name` of `unet` (or `weights`, a state dict of it by parameter name) as peft writes it."""
    from peft import get_peft_model_state_dict

    sd = get_peft_model_state_dict(unet, state_dict=weights, adapter_name=name)
    return {PEFT_PREFIX + k: v.detach().float().cpu().contiguous() for k, v in sd.items()}


@dataclass
class Adapter:
    """One adapter file: its LoraConfig, its tensors (peft's names) and what the stage that made it adapted."""

    config: object
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def layout(self) -> str:
        """The conditioning layout whose temporal weights it adapts ("" for none: a text-to-image stage)."""
        return self.metadata.get(LAYOUT_KEY, "")

    @property
    def touches_spatial(self) -> bool:
        from emu_video.models.naming import is_video_param

        return any(not is_video_param(k) for k in self.tensors)

    def save(self, folder: str | Path) -> Path:
        """`adapter_model.safetensors` + `adapter_config.json` in `folder` (peft's layout)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": "pt", **{k: str(v) for k, v in self.metadata.items()}}
        save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(folder / WEIGHTS_NAME), metadata=meta)
        self.config.save_pretrained(str(folder))
        return folder


def read_adapter(path: str | Path) -> Adapter:
    """An adapter folder (or its `adapter_model.safetensors`; the config is read from the same folder)."""
    peft = require_peft()
    path = Path(path)
    file = path / WEIGHTS_NAME if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"no LoRA adapter at {path} (expected a folder with {WEIGHTS_NAME} and {CONFIG_NAME})")
    config_file = file.parent / CONFIG_NAME
    if not config_file.is_file():
        raise UserError(f"{file}: no {CONFIG_NAME} next to it (a LoRA adapter folder has both files)")
    try:
        kind = json.loads(config_file.read_text(encoding="utf-8")).get("peft_type")
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise UserError(f"{config_file}: not a peft adapter config ({exc})") from None
    if kind != "LORA":
        raise UserError(f"{config_file}: a {kind} adapter; only LoRA adapters are supported")
    config = peft.LoraConfig.from_pretrained(str(file.parent))
    try:
        with safe_open(str(file), "pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise UserError(f"{file}: not a readable safetensors file ({exc})") from None
    if not tensors or not all(k.startswith(PEFT_PREFIX) and ".lora_" in k for k in tensors):
        raise UserError(f"{file} does not hold LoRA weights in peft's naming ({PEFT_PREFIX}<layer>.lora_A.weight)")
    return Adapter(config, tensors, metadata, file.parent)


def merge_adapters(unet: nn.Module, adapters: Sequence[tuple[Adapter, float]]) -> nn.Module:
    """Add each adapter's update, times its scale, to `unet`'s weights (in place, with peft's merge) and
    give `unet` its plain layers back. Scale 0 leaves the weights as they were."""
    if not adapters:
        return unet
    require_peft()
    from peft import PeftModel, set_peft_model_state_dict
    from peft.tuners.lora import LoraLayer

    names = [f"adapter_{k}" for k in range(len(adapters))]
    model = None
    for name, (adapter, _) in zip(names, adapters):
        where = adapter.path or "adapter"
        try:
            if model is None:
                model = PeftModel(unet, adapter.config, adapter_name=name)
            else:
                model.add_adapter(name, adapter.config)
            result = set_peft_model_state_dict(model, adapter.tensors, adapter_name=name)
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"{where} does not fit this U-Net (made for another model?): {exc}") from None
        if result.unexpected_keys:
            raise UserError(f"{where} has weights for layers this U-Net lacks, e.g. {result.unexpected_keys[0]}")
        missing = [k for k in result.missing_keys if f".{name}." in k and "lora_" in k]
        if missing:
            raise UserError(f"{where} lacks weights of its own layers, e.g. {missing[0]}")
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name, (_, scale) in zip(names, adapters):
                module.set_scale(name, float(scale))
    merged = model.merge_and_unload(adapter_names=names)
    if "peft_config" in merged.__dict__:  # left on the model by peft's tuner
        del merged.peft_config
    return merged
