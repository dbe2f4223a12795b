"""LoRA stages (model.lora_rank): only the adapter trains, the run writes the adapter in peft's layout and
the merged model, resumes exactly, and an interpolation adapter merges into that layout's weights only."""

import json

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import metrics, run_stage

pytest.importorskip("peft")

from emu_video.cli.main import main  # noqa: E402
from emu_video.errors import UserError  # noqa: E402
from emu_video.models import VideoUNet  # noqa: E402
from emu_video.models.lora import read_adapter  # noqa: E402
from emu_video.pipelines.components import EmuVideoComponents  # noqa: E402
from emu_video.training.checkpoint import read_tensors  # noqa: E402
from emu_video.training.config import load_config  # noqa: E402


def _q(path) -> str:
    return json.dumps(str(path))


def _lora_run(out, media_dir, model_dir, *overrides):
    return run_stage("video_256", out, f"model.init={_q(model_dir)}", f"data.manifest={_q(media_dir / 'videos.jsonl')}",
                     "data.num_frames=4", "model.lora_rank=4", "model.lora_alpha=8", *overrides)


def test_lora_stage_trains_only_the_adapter_and_writes_it_and_the_merged_model(tmp_path, media_dir, micro_model_dir):
    trainer = _lora_run(tmp_path / "run", media_dir, micro_model_dir, "optim.lr=1e-2")
    assert trainer.status == "finished"
    assert trainer.named and all(".lora_A." in n or ".lora_B." in n for n, _ in trainer.named)
    assert all("temporal_" in n for n, _ in trainer.named)  # auto: a video stage adapts its temporal layers
    saved = read_tensors(tmp_path / "run/checkpoints/step-00000002", "trainable")
    assert set(saved) == {n for n, _ in trainer.named}

    base = VideoUNet.from_pretrained(micro_model_dir / "unet").state_dict()
    own = {k.replace(".base_layer.", "."): v for k, v in trainer.task.core.state_dict().items() if "lora_" not in k}
    assert own.keys() == base.keys() and all(torch.equal(own[k], base[k]) for k in base)  # nothing else moved

    adapter = read_adapter(tmp_path / "run/lora")
    assert adapter.layout == "first_frame" and adapter.config.r == 4 and adapter.config.lora_alpha == 8
    assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in adapter.tensors.items())

    merged = EmuVideoComponents.from_pretrained(tmp_path / "run/model").unet.state_dict()
    with_adapter = EmuVideoComponents.from_pretrained(micro_model_dir, lora=[(tmp_path / "run/lora", 1.0)])
    changed = [k for k in base if not torch.equal(merged[k], base[k])]
    assert changed and all("temporal_" in k for k in changed)
    for k, v in with_adapter.unet.state_dict().items():
        torch.testing.assert_close(v, merged[k], rtol=1e-5, atol=1e-7, msg=k)


def test_lora_run_resumes_where_an_uninterrupted_run_goes(tmp_path, media_dir, micro_model_dir):
    straight = _lora_run(tmp_path / "straight", media_dir, micro_model_dir, "train.max_steps=3")
    _lora_run(tmp_path / "split", media_dir, micro_model_dir, "train.max_steps=2")
    resumed = _lora_run(tmp_path / "split", media_dir, micro_model_dir, "train.max_steps=3")
    assert resumed.step == straight.step == 3
    a, b = metrics(tmp_path / "straight"), metrics(tmp_path / "split")
    assert [a[s]["loss"] for s in range(1, 4)] == [b[s]["loss"] for s in range(1, 4)]
    x, y = (load_file(str(d / "lora/adapter_model.safetensors")) for d in (tmp_path / "straight", tmp_path / "split"))
    assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_interpolation_adapter_merges_into_the_interpolation_weights(tmp_path, media_dir, micro_model_dir):
    run = run_stage("interpolation", tmp_path / "interp", f"model.init={_q(micro_model_dir)}",
                    f"data.manifest={_q(media_dir / 'videos.jsonl')}", "train.batch_size=1", "model.lora_rank=2",
                    "optim.lr=1e-2")
    assert run.status == "finished" and read_adapter(tmp_path / "interp/lora").layout == "interpolation"
    # the stage began from the U-Net's own temporal weights: merging its adapter back at scale -1 undoes it
    assert main(["merge-lora", str(tmp_path / "interp/model"), str(tmp_path / "interp/lora"), "--out",
                 str(tmp_path / "undone"), "--scale", "-1"]) == 0
    assert main(["merge-lora", str(micro_model_dir), str(tmp_path / "interp/lora"), "--out",
                 str(tmp_path / "merged")]) == 2  # the base model has no interpolation weights to adapt
    base = VideoUNet.from_pretrained(micro_model_dir / "unet").state_dict()
    trained = load_file(str(tmp_path / "interp/model/interpolation/temporal.safetensors"))
    undone = load_file(str(tmp_path / "undone/interpolation/temporal.safetensors"))
    assert any(not torch.allclose(trained[k], base[k], atol=1e-4) for k in trained)
    for k, v in undone.items():
        torch.testing.assert_close(v, base[k], rtol=1e-4, atol=1e-6, msg=k)
    merged_unet = VideoUNet.from_pretrained(tmp_path / "undone/unet").state_dict()
    assert all(torch.equal(merged_unet[k], base[k]) for k in base)  # the U-Net's own weights are untouched
    assert EmuVideoComponents.from_pretrained(tmp_path / "undone").has_layout("interpolation")


@pytest.mark.parametrize("stage, targets, message", [
    ("text_to_image", "temporal", "without temporal layers"),
    ("interpolation", "both", "shares the spatial"),
    ("video_256", "sideways", "choose one of"),
])
def test_lora_settings_that_cannot_work_are_refused(tmp_path, stage, targets, message):
    with pytest.raises(UserError, match=message):
        load_config(stage, [f"train.output_dir={_q(tmp_path)}", "model.init=x", "model.lora_rank=4",
                            f"model.lora_targets={targets}", "data.manifest=[\"m.jsonl\"]"])
