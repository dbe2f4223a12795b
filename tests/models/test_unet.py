"""Video U-Net: identity init, parameter groups, configs and their counts, weight files."""

import json

import pytest
import torch
from unet_helpers import perturb_video_layers, text_contexts

from emu_video.errors import UserError
from emu_video.models import VideoUNet, preset, tiny_config
from emu_video.models.serialization import (
    load_weights,
    read_safetensors,
)


def test_fresh_video_model_equals_image_model_per_frame():
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).eval()
    x = torch.randn(2, 9, 6, 16, 16)
    ctx = text_contexts()
    with torch.no_grad():
        video = m(x, torch.tensor([1, 999]), ctx)
        frames = torch.stack([m(x[:, :4, i], torch.tensor([1, 999]), ctx, use_temporal=False) for i in range(6)], 2)
    torch.testing.assert_close(video, frames, rtol=1e-5, atol=1e-5)


def test_trained_temporal_layers_mix_frames_and_can_be_switched_off():
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).eval()
    perturb_video_layers(m)
    x = torch.randn(1, 4, 4, 16, 16)
    ctx = text_contexts(1)
    with torch.no_grad():
        video = m(x, 10, ctx)
        x2 = x.clone()
        x2[:, :, 3] += 1.0  # change only the last frame
        video2 = m(x2, 10, ctx)
        assert (video2[:, :, 0] - video[:, :, 0]).abs().max() > 1e-4  # information flows across time
        image = m(x, 10, ctx, use_temporal=False)
        image2 = m(x2, 10, ctx, use_temporal=False)
    torch.testing.assert_close(image[:, :, 0], image2[:, :, 0])  # without temporal layers frames are independent


def test_identity_initialisation_values():
    m = VideoUNet(tiny_config())
    conv = m.down_blocks[0].resnets[0].temporal_conv1.conv
    w = conv.weight[:, :, :, 0, 0]
    assert torch.equal(w[:, :, 1], torch.eye(w.shape[0]))
    assert torch.count_nonzero(w[:, :, 0]) == 0 and torch.count_nonzero(w[:, :, 2]) == 0
    attn = m.down_blocks[0].temporal_attentions[0]
    assert torch.count_nonzero(attn.proj_out.weight) == 0 and torch.count_nonzero(attn.proj_out.bias) == 0
    assert torch.count_nonzero(m.conv_in_cond.weight) == 0
    assert m.conv_in_cond.weight.shape[1] == 5  # C+1 new input channels
    assert m.config.in_channels == 9


def test_freeze_spatial_trains_only_video_layers():
    m = VideoUNet(tiny_config()).freeze_spatial()
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(("temporal_" in n) or n.startswith("conv_in_cond") for n in trainable)
    assert "conv_in.weight" not in trainable and "conv_in_cond.weight" in trainable
    x = torch.randn(1, 9, 3, 16, 16)
    m(x, 5, text_contexts(1)).square().mean().backward()
    assert all(p.grad is None for n, p in m.named_parameters() if n not in trainable)
    assert m.conv_in_cond.weight.grad is not None and m.conv_in_cond.weight.grad.abs().sum() > 0


def test_two_contexts_each_reach_their_own_layer():
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).eval()
    x = torch.randn(1, 4, 2, 16, 16)
    a, b = text_contexts(1)
    with torch.no_grad():
        base = m(x, 3, [a, b])
        assert (m(x, 3, [a, b * 2]) - base).abs().max() > 1e-5
        assert (m(x, 3, [a * 2, b]) - base).abs().max() > 1e-5
    assert m.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_k.in_features == 24
    assert m.down_blocks[0].attentions[0].transformer_blocks[1].attn2.to_k.in_features == 40


def test_bad_inputs_are_clear_errors():
    m = VideoUNet(tiny_config())
    with pytest.raises(UserError, match="channels"):
        m(torch.randn(1, 6, 2, 16, 16), 1, text_contexts(1))
    with pytest.raises(UserError, match="context"):
        m(torch.randn(1, 4, 2, 16, 16), 1, text_contexts(1)[:1])


@pytest.mark.parametrize(
    "name,total,spatial,temporal",
    [("paper", 4.3e9, 2.7e9, 1.7e9)],
)
def test_paper_config_matches_the_paper_counts(name, total, spatial, temporal):
    with torch.device("meta"):
        counts = VideoUNet(preset(name)).parameter_counts()
    assert abs(counts["total_params"] / total - 1) < 0.05
    assert abs(counts["spatial_params"] / spatial - 1) < 0.05
    assert abs(counts["temporal_params"] / temporal - 1) < 0.05
    cfg = preset(name)
    assert cfg.in_channels == 17 and cfg.out_channels == 8 and cfg.context_dims == (768, 2048)


def test_sd15_spatial_shapes_are_stable_diffusion_15():
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        ours = VideoUNet(preset("sd15"))
        ref = UNet2DConditionModel(cross_attention_dim=768)  # SD 1.x shapes
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    our_spatial = {n: tuple(p.shape) for n, p in ours.spatial_named_parameters()}
    assert our_spatial == ref_shapes


def test_save_and_load_whole_model_and_temporal_weights(tmp_path):
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).eval()
    perturb_video_layers(m)
    m.save_pretrained(tmp_path / "unet")
    assert json.loads((tmp_path / "unet" / "config.json").read_text())["_class_name"] == "VideoUNet"
    loaded = VideoUNet.from_pretrained(tmp_path / "unet").eval()
    x, ctx = torch.randn(1, 9, 3, 16, 16), text_contexts(1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, 7, ctx), m(x, 7, ctx), rtol=0, atol=0)

    m.save_video_weights(tmp_path / "temporal.safetensors")
    stored = read_safetensors(tmp_path / "temporal.safetensors")
    assert stored and all(("temporal_" in k) or k.startswith("conv_in_cond") for k in stored)
    fresh = VideoUNet.from_pretrained(tmp_path / "unet")
    fresh.reset_video_layers()
    fresh.load_video_weights(tmp_path / "temporal.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, 7, ctx), m(x, 7, ctx), rtol=0, atol=0)


def test_mismatched_or_corrupt_weights_are_refused(tmp_path):
    m = VideoUNet(tiny_config())
    m.save_pretrained(tmp_path / "unet")
    sd = m.state_dict()
    sd["conv_in.weight"] = torch.zeros(1)
    del sd["conv_out.bias"]
    with pytest.raises(UserError, match="missing.*wrong shape|missing"):
        load_weights(VideoUNet(tiny_config()), sd, "test")
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read weights"):
        VideoUNet.from_pretrained(tmp_path / "unet")
    with pytest.raises(UserError, match="not found"):
        VideoUNet.from_pretrained(tmp_path / "nowhere")


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    m = VideoUNet(tiny_config()).freeze_spatial()
    perturb_video_layers(m)
    x, ctx = torch.randn(1, 9, 3, 16, 16), text_contexts(1)
    m(x, 5, ctx).square().mean().backward()
    ref = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad(set_to_none=True)
    m.enable_gradient_checkpointing()
    m(x, 5, ctx).square().mean().backward()
    for n, g in ref.items():
        torch.testing.assert_close(dict(m.named_parameters())[n].grad, g, rtol=1e-5, atol=1e-6)
