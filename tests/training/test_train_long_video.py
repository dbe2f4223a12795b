"""The long-video stages as shipped (configs/stages/shapes_world/extension.toml, keyframes.toml) train from the
default model, export fp16 temporal weights without F's frozen clause attention, and the folder they write
samples `extend` and `animate --last` with those weights (F's clause attention filled back in)."""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from train_helpers import run_stage

from emu_video.models.naming import is_clause_param
from emu_video.pipelines import (
    EmuVideoComponents,
    ImageToVideoPipeline,
    LongVideoPipeline,
    ModelIndex,
)
from emu_video.pipelines.components import DEFAULT_MODEL_DIR

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "stages" / "shapes_world"
SMALL = ["data.resolution=32", "train.batch_size=1", "train.max_steps=1", "train.ema_decay=0"]


def test_extension_then_keyframes_stages_make_one_folder_that_samples_both(tmp_path):
    ext = run_stage(str(CONFIGS / "extension.toml"), tmp_path / "extension", *SMALL)
    assert ext.status == "finished"
    assert ext.task.layout.options() == {"noise_aug_max": 0, "past_frames": 4}
    assert ext.task.inputs is not None and ext.dataset.motion_change == 0.5 and ext.dataset.past_frames == 4
    key = run_stage(str(CONFIGS / "keyframes.toml"), tmp_path / "keyframes", *SMALL,
                    f"model.init={json.dumps(str(tmp_path / 'extension/model'))}")
    assert key.status == "finished"
    model = tmp_path / "keyframes/model"
    index = ModelIndex.load(model)
    assert set(index.weight_files()) == {"interpolation", "extension", "keyframes"}
    assert index.layouts["extension"]["options"]["past_frames"] == 4
    for name in ("extension", "keyframes"):
        assert index.layouts[name]["fill_from"] == "first_frame"
        with safe_open(str(model / f"{name}/temporal.safetensors"), "pt") as f:
            keys = set(f.keys())
            assert {str(f.get_slice(k).get_dtype()) for k in keys} == {"F16"}
        assert keys and not any(is_clause_param(k) for k in keys)
    # the folder loads: each layout's weights are its own, with F's clause attention filled in
    c = EmuVideoComponents.from_pretrained(model)
    f_weights = c.temporal_weights["first_frame"]
    for name in ("extension", "keyframes"):
        w = c.temporal_weights[name]
        assert w.keys() == f_weights.keys()
        assert all(torch.equal(w[k], f_weights[k]) for k in w if is_clause_param(k))
        assert any(not torch.equal(w[k], f_weights[k]) for k in w if not is_clause_param(k))
    # the shipped model grows by the two files and stays within its budget
    shipped = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file())
    added = sum((model / f"{n}/temporal.safetensors").stat().st_size for n in ("extension", "keyframes"))
    assert shipped + added <= 60 * 10**6

    video = LongVideoPipeline(c)(["a red circle moves right", "a red circle moves left"], first_image=np.zeros(
        (32, 32, 3), np.uint8), interpolate=False, num_inference_steps=1, height=32, width=32, progress=False)
    assert video.info["weights"] == "extension" and video.info["num_past"] == 4 and video.info["num_new"] == 12
    assert video.frames.shape == (16 + 12, 32, 32, 3)
    rng = np.random.default_rng(0)
    first, last = (rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2))
    out = ImageToVideoPipeline(c)(first, "a red circle moves right", last_image=last, num_inference_steps=1,
                                  height=32, width=32, progress=False)
    assert out.info == {"layout": "keyframes", "weights": "keyframes"} and out.frames.shape[0] == 16
