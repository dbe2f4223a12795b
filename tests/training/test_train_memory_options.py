"""The options that make a video stage fit a small GPU, alone and together: LoRA, a latent/text cache (no
encoders loaded), activation checkpointing, 8-bit AdamW (bitsandbytes), resumable like any run."""

import json

import pytest
import torch
from safetensors import safe_open
from train_helpers import metrics, micro_unet_config, run_stage

from emu_video.cli.main import main
from emu_video.models import VideoUNet
from emu_video.models.autoencoder import FrameAutoencoder
from emu_video.models.text_encoder import TextEncoder

pytest.importorskip("peft")
pytest.importorskip("bitsandbytes")


def _q(path) -> str:
    return json.dumps(str(path))


def test_every_memory_option_together_trains_from_a_cache(tmp_path, media_dir, micro_model_dir, monkeypatch):
    cache = tmp_path / "cache"
    assert main(["prepare-data", "--manifest", str(media_dir / "videos.jsonl"), "--cache", str(cache), "--model",
                 str(micro_model_dir), "--resolution", "16", "--frames", "4", "--fps", "8", "--batch-size", "6"]) == 0

    def refuse(*args, **kwargs):
        raise AssertionError("a frozen encoder was loaded although the run reads a cache")

    monkeypatch.setattr(FrameAutoencoder, "from_pretrained", classmethod(refuse))
    monkeypatch.setattr(TextEncoder, "from_pretrained", classmethod(refuse))
    trainer = run_stage("video_256", tmp_path / "run", f"data.cache={_q(cache)}", f"model.init={_q(micro_model_dir)}",
                        "data.num_frames=4", "model.lora_rank=4", "train.gradient_checkpointing=true",
                        "optim.optimizer=adamw8bit")
    assert trainer.status == "finished" and trainer.task.inputs.is_cached and trainer.task.core.gradient_checkpointing
    assert type(trainer.optimizer).__name__ == "AdamW8bit"
    assert (tmp_path / "run/lora/adapter_model.safetensors").exists()


def test_8bit_adamw_stores_8bit_moments_and_resumes_exactly(tmp_path, media_dir, micro_model_dir):
    def run(out, steps):
        return run_stage("video_256", out, f"model.init={_q(micro_model_dir)}", "data.num_frames=4",
                         f"data.manifest={_q(media_dir / 'videos.jsonl')}", "optim.optimizer=adamw8bit",
                         f"train.max_steps={steps}")

    run(tmp_path / "straight", 3)
    run(tmp_path / "split", 2)
    assert run(tmp_path / "split", 3).step == 3
    a, b = metrics(tmp_path / "straight"), metrics(tmp_path / "split")
    assert [a[s]["loss"] for s in (1, 2, 3)] == [b[s]["loss"] for s in (1, 2, 3)]
    with safe_open(str(tmp_path / "split/checkpoints/step-00000003/optimizer.safetensors"), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys() if k.endswith("::state1")}
    assert "U8" in dtypes  # the large weights' moments are 8-bit (bitsandbytes keeps small ones in 32 bits)
    x, y = (VideoUNet.from_pretrained(d / "model/unet").state_dict() for d in (tmp_path / "straight", tmp_path / "split"))
    assert all(torch.equal(x[k], y[k]) for k in x)


def test_activation_checkpointing_gives_the_same_lora_gradients():
    from emu_video.models.lora import add_adapter, lora_config

    torch.manual_seed(0)
    unet = VideoUNet(micro_unet_config())
    named = add_adapter(unet, lora_config(unet, 4, 4.0, "both"))
    with torch.no_grad():
        for _, p in named:
            p.normal_(0, 0.1)
    g = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(2, 9, 4, 8, 8, generator=g), [torch.randn(2, 5, 24, generator=g), torch.randn(2, 5, 40, generator=g)]
    grads = []
    for on in (False, True):
        unet.zero_grad()
        unet.enable_gradient_checkpointing(on)
        unet(x, torch.tensor([3, 900]), ctx).square().mean().backward()
        grads.append([p.grad.clone() for _, p in named])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
