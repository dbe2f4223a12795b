"""`model_index.json`: what a model folder holds, which layouts it has temporal weights for, and its defaults.

    {
      "unet": "unet", "vae": "vae", "text_encoders": [...],
      "image_schedule": {...},                                  the text-to-image model's noise schedule
      "layouts": {                                              one entry per layout the folder can sample
        "first_frame":   {"schedule": {...}},                   weights: the U-Net's own temporal layers (F)
        "interpolation": {"weights": "interpolation/temporal.safetensors", "schedule": {...},
                          "options": {"input_frames": 8, "factor": 4, "pad": 4, "noise_aug_max": 250}},
        "extension":     {"weights": "extension/temporal.safetensors", "schedule": {...},
                          "options": {"past_frames": 4}, "fill_from": "first_frame"}
      },
      "defaults": {"steps": 10, "w_txt": 5.5, ...},              sampling defaults (see SAMPLING_DEFAULTS)
      "domain": "shapes_world"                                  optional: what the model knows, when narrow
    }

A layout without an entry is sampled with the weights of its fallback layout (see `Layout.fallback`). A file
whose entry has "fill_from" holds only the tensors its stage trained; the others are that layout's (F's).
Folders written before layouts existed ("video_schedule", "interpolation", "interpolation_schedule") are read
as the same entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emu_video.diffusion import NoiseSchedule
from emu_video.diffusion.guidance import PAPER_IMAGE_SCALE, PAPER_W_IMG, PAPER_W_TXT
from emu_video.diffusion.samplers import DEFAULT_SAMPLER
from emu_video.errors import UserError
from emu_video.io.jsonfile import read_json

INDEX_NAME = "model_index.json"
PRIMARY_LAYOUT = "first_frame"  # the layout whose temporal weights are the U-Net's own


def layout_weights_file(layout: str) -> str:
    """Where a stage writes the temporal weights of `layout` inside a model folder."""
    return f"{layout}/temporal.safetensors"


INTERPOLATION_WEIGHTS = layout_weights_file("interpolation")

# Sampling defaults; a model folder's "defaults" entry overrides them.
SAMPLING_DEFAULTS: dict[str, Any] = {
    "sampler": DEFAULT_SAMPLER,
    "steps": 50,
    "image_guidance": PAPER_IMAGE_SCALE,
    "w_img": PAPER_W_IMG,
    "w_txt": PAPER_W_TXT,
    "num_frames": 16,
    "fps": 4.0,
    "interpolation_steps": 50,
    "interpolation_noise_t": 100,
    "height": 512,
    "width": 512,
    "cfg_truncation": 1.0,  # speed levers, off unless a folder's defaults switch them on (pipelines/base.py)
    "cfg_truncation_keep": "cond",
    "cache_interval": 1,
}


def _default_layouts() -> dict[str, dict[str, Any]]:
    return {PRIMARY_LAYOUT: {"schedule": NoiseSchedule.stage_256().to_dict()}}


@dataclass
class ModelIndex:
    unet: str = "unet"
    vae: str = "vae"
    text_encoders: list[dict[str, Any]] = field(default_factory=lambda: [{"path": "text_encoder", "tokenizer": "tokenizer"}])
    image_schedule: dict[str, Any] = field(default_factory=lambda: NoiseSchedule.stage_256().to_dict())
    layouts: dict[str, dict[str, Any]] = field(default_factory=_default_layouts)
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    # What the model knows, when it is narrow: "shapes_world" (prompts in the Shapes World caption grammar)
    domain: str = ""

    # Layout entries ------------------------------------------------------------------------------------
    def set_layout(self, name: str, schedule: dict[str, Any], weights: str | None = None,
                   options: dict[str, Any] | None = None, fill_from: str | None = None) -> None:
        entry: dict[str, Any] = {"schedule": dict(schedule)}
        if weights:
            entry["weights"] = weights
        if fill_from:  # the weights file leaves out tensors that are this layout's (e.g. F's clause attention)
            entry["fill_from"] = fill_from
        if options:
            entry["options"] = dict(options)
        self.layouts[name] = entry

    def weight_files(self) -> dict[str, str]:
        """Layout -> temporal weights file, for the layouts with weights of their own outside the U-Net."""
        return {name: e["weights"] for name, e in self.layouts.items() if e.get("weights")}

    # Reading and writing ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_class_name"] = "EmuVideo"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelIndex:
        d = dict(d)
        if "layouts" not in d:  # the format before layouts
            layouts = {PRIMARY_LAYOUT: {"schedule": d.get("video_schedule") or NoiseSchedule.stage_256().to_dict()}}
            if d.get("interpolation"):
                layouts["interpolation"] = {
                    "weights": d["interpolation"],
                    "schedule": d.get("interpolation_schedule") or NoiseSchedule.stage_512().to_dict(),
                }
            d["layouts"] = layouts
        bad = [name for name, e in d["layouts"].items() if not isinstance(e, dict) or "schedule" not in e]
        if bad:
            raise UserError(f"{INDEX_NAME}: layout entries {bad} need a 'schedule'")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def load(cls, folder: Path) -> ModelIndex:
        path = folder / INDEX_NAME
        if not path.exists():
            raise UserError(f"{folder} is not an emu-video model folder (no {INDEX_NAME})")
        return cls.from_dict(read_json(path, "model index"))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / INDEX_NAME).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
