"""Layouts added through the layout registry alone train as stages and sample from the folder they write:
`direct` (text-to-video without an image) and `keyframes` (first and last frame given), plus `extension`."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from train_helpers import run_stage

from emu_video.pipelines import ImageToVideoPipeline, ModelIndex, TextToVideoPipeline
from emu_video.training.config import STAGE_KINDS, load_config


def _q(path) -> str:
    return json.dumps(str(path))


def test_every_layout_is_a_stage_kind():
    assert {"video", "first_frame", "interpolation", "extension", "direct", "keyframes"} <= set(STAGE_KINDS)


def test_layout_options_come_from_the_layout_table(tmp_path):
    cfg = load_config("video_256", [f"train.output_dir={_q(tmp_path)}", "data.manifest=x.jsonl", "model.init=m",
                                    "stage.kind=extension", "layout.past_frames=3"])
    assert cfg.conditioning_layout().positions(8) == [0, 1, 2]
    from emu_video.errors import UserError

    with pytest.raises(UserError, match="has no option"):
        load_config("video_256", [f"train.output_dir={_q(tmp_path)}", "data.manifest=x.jsonl", "model.init=m",
                                  "stage.kind=direct", "layout.past_frames=3"])


@pytest.mark.parametrize("kind", ["direct", "keyframes"])
def test_new_layout_trains_and_samples_with_its_own_weights(tmp_path, media_dir, micro_model_dir, kind):
    trainer = run_stage("video_256", tmp_path / kind, f"data.manifest={_q(media_dir / 'videos.jsonl')}",
                        f"model.init={_q(micro_model_dir)}", f"stage.kind={kind}", "data.num_frames=4")
    assert trainer.status == "finished"
    model = tmp_path / kind / "model"
    index = ModelIndex.load(model)
    assert index.weight_files() == {kind: f"{kind}/temporal.safetensors"}
    assert index.layouts[kind]["schedule"]["prediction_type"] == "epsilon"  # video_256's
    assert set(index.layouts) == {"first_frame", kind}
    trained = load_file(str(model / f"{kind}/temporal.safetensors"))
    assert "conv_in_cond.weight" in trained

    if kind == "direct":
        pipe = TextToVideoPipeline.from_pretrained(model)
        out = pipe("a red circle moves left", seed=0, direct=True, num_frames=4, interpolate=False,
                   num_inference_steps=2, progress=False)
        assert out.frames.shape == (4, 16, 16, 3) and out.info == {"layout": "direct", "weights": "direct"}
        assert out.first_frame is None
    else:
        pipe = ImageToVideoPipeline.from_pretrained(model)
        rng = np.random.default_rng(0)
        first, last = (rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2))
        out = pipe(first, "a red circle moves left", last_image=last, seed=0, num_frames=4, num_inference_steps=2,
                   progress=False)
        assert out.frames.shape == (4, 16, 16, 3) and out.info == {"layout": "keyframes", "weights": "keyframes"}
        # while sampling, the U-Net held the keyframes weights; afterwards F's again
        own = pipe.components.unet.state_dict()
        assert all(torch.equal(own[k], v) for k, v in pipe.components.temporal_weights["first_frame"].items())
