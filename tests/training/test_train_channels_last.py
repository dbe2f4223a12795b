"""train.channels_last: the U-Net and the VAE on channels-last frames train to the same losses and weights
as the default layout, write checkpoints that resume in either layout, and are chosen as documented."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import metrics, run_stage

from emu_video.errors import UserError
from emu_video.training.trainer import use_channels_last


def _q(path) -> str:
    return json.dumps(str(path))


def _run(out, media_dir, model_dir, *extra):
    return run_stage("video_256", out, f"data.manifest={_q(media_dir / 'videos.jsonl')}", f"model.init={_q(model_dir)}",
                     "data.num_frames=4", "train.max_steps=2", *extra)


def test_channels_last_trains_like_the_default_layout_and_resumes_across_layouts(tmp_path, media_dir, micro_model_dir):
    ref = _run(tmp_path / "ref", media_dir, micro_model_dir, "train.channels_last=off")
    fast = _run(tmp_path / "fast", media_dir, micro_model_dir, "train.channels_last=on")
    assert fast.task.core.channels_last
    # the eager VAE stays NCHW (eager GroupNorm would copy each activation out of channels-last and back)
    assert fast.task.inputs.vae.memory_format == torch.contiguous_format
    conv = next(m for m in fast.task.core.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not ref.task.core.channels_last
    ref_losses, fast_losses = metrics(tmp_path / "ref"), metrics(tmp_path / "fast")
    for step in (1, 2):
        assert fast_losses[step]["loss"] == pytest.approx(ref_losses[step]["loss"], rel=1e-4)
    for (name, p), (_, q) in zip(ref.named, fast.named):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)
    # the channels-last run's checkpoint goes on in the default layout, to the same step-3 loss
    more = _run(tmp_path / "fast", media_dir, micro_model_dir, "train.channels_last=off", "train.max_steps=3")
    again = _run(tmp_path / "ref", media_dir, micro_model_dir, "train.channels_last=off", "train.max_steps=3")
    assert more.step == again.step == 3
    assert metrics(tmp_path / "fast")[3]["loss"] == pytest.approx(metrics(tmp_path / "ref")[3]["loss"], rel=1e-4)


def test_auto_is_on_for_cuda_without_fsdp():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert use_channels_last("auto", cuda, "ddp") and use_channels_last("auto", cuda, "single")
    assert not use_channels_last("auto", cuda, "fsdp") and not use_channels_last("auto", cpu, "single")
    assert use_channels_last("on", cpu, "single") and not use_channels_last("off", cuda, "ddp")


@pytest.mark.parametrize("settings, message", [
    (["train.channels_last=yes"], "train.channels_last"),
    (["train.channels_last=on", "parallel.strategy=fsdp"], "fsdp"),
])
def test_bad_channels_last_settings_are_named(tmp_path, settings, message):
    from emu_video.training.config import load_config

    with pytest.raises(UserError, match=message):
        load_config("video_256", [f"train.output_dir={_q(tmp_path)}", *settings])
