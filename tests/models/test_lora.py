"""LoRA adapters on the video U-Net (emu_video/models/lora.py), checked against peft itself: files that
`PeftModel.from_pretrained` loads, merged weights that compute what the unmerged adapter computes, scale 0
as the base model, and the fast paths taking the adapters into account."""

import json

import pytest
import torch

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.usefixtures("one_thread")

from emu_video.errors import UserError  # noqa: E402
from emu_video.models import VideoUNet, VideoUNetConfig  # noqa: E402
from emu_video.models.lora import (  # noqa: E402
    CONFIG_NAME,
    WEIGHTS_NAME,
    Adapter,
    adapter_tensors,
    add_adapter,
    lora_config,
    merge_adapters,
    read_adapter,
    target_modules,
)


def _config():
    return VideoUNetConfig(
        latent_channels=4, block_out_channels=(16, 32), layers_per_block=(1, 1), attention_levels=(False, True),
        num_attention_heads=None, attention_head_dim=8, transformer_layers_per_block=1, context_dims=(24,),
        norm_num_groups=4, temporal_attention_heads_dim=8, temporal_ff_mult=2,
    )


def _base(seed=0):
    torch.manual_seed(seed)
    unet = VideoUNet(_config())
    with torch.no_grad():  # random weights everywhere (temporal layers start as identity otherwise)
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return unet.eval()


def _inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 9, 4, 8, 8, generator=g)
    return x, torch.tensor([10, 700]), [torch.randn(2, 5, 24, generator=g)]


def _with_random_adapter(targets="both", rank=4, alpha=8.0, seed=3):
    """The base U-Net with an adapter whose A and B are both random (a trained adapter, not a fresh one)."""
    unet = _base()
    cfg = lora_config(unet, rank, alpha, targets)
    named = add_adapter(unet, cfg)
    torch.manual_seed(seed)
    with torch.no_grad():
        for _, p in named:
            p.copy_(torch.randn_like(p) * 0.1)
    return unet, cfg


def _run(unet, fast=True):
    unet.set_fast_paths(fast)
    with torch.no_grad():
        return unet(*_inputs())


@pytest.mark.parametrize("targets", ["temporal", "spatial", "both"])
def test_targets_are_the_linear_layers_of_the_chosen_transformers(targets):
    names = target_modules(_base(), targets)
    if targets != "both":
        assert names and all(("temporal_" in n) == (targets == "temporal") for n in names)
    else:
        assert set(names) == set(target_modules(_base(), "temporal")) | set(target_modules(_base(), "spatial"))
    assert any(n.endswith(".attn1.to_q") for n in names) and any(n.endswith(".ff.net.2") for n in names)


def test_only_adapter_weights_train_and_the_fused_projections_keep_the_adapters():
    unet, _ = _with_random_adapter()
    trainable = [n for n, p in unet.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    base = _run(_base(), fast=True)
    fast, reference = _run(unet, fast=True), _run(unet, fast=False)
    assert not torch.allclose(fast, base, atol=1e-3)  # the adapters change the output...
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)  # ...on the fused path as on the reference


def test_merged_weights_compute_what_the_unmerged_adapter_computes():
    unet, cfg = _with_random_adapter()
    unmerged = _run(unet)
    adapter = Adapter(cfg, adapter_tensors(unet))
    merged = merge_adapters(_base(), [(adapter, 1.0)])
    assert all(type(m).__module__.startswith(("torch", "emu_video")) for m in merged.modules())  # plain layers again
    assert not hasattr(merged, "peft_config")
    torch.testing.assert_close(_run(merged), unmerged, rtol=1e-4, atol=1e-5)


def test_scale_zero_is_the_base_model_and_scales_add_up():
    unet, cfg = _with_random_adapter()
    adapter = Adapter(cfg, adapter_tensors(unet))
    base = _base()
    assert torch.equal(_run(merge_adapters(_base(), [(adapter, 0.0)])), _run(base))
    # two half-strength copies merge to the full adapter; the delta is linear in the scale
    twice = merge_adapters(_base(), [(adapter, 0.5), (adapter, 0.5)])
    once = merge_adapters(_base(), [(adapter, 1.0)])
    for (n, a), (_, b) in zip(twice.state_dict().items(), once.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=n)


def test_files_have_peft_layout_and_load_with_peftmodel(tmp_path):
    unet, cfg = _with_random_adapter(targets="temporal")
    expected = _run(unet)
    ours = Adapter(cfg, adapter_tensors(unet), {"emu_video.layout": "first_frame"}).save(tmp_path / "ours")
    assert sorted(p.name for p in ours.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]

    # peft's own loader puts the same adapter on a fresh U-Net
    loaded = peft.PeftModel.from_pretrained(_base(), str(ours)).eval()
    loaded.get_base_model().set_fast_paths(True)
    with torch.no_grad():
        torch.testing.assert_close(loaded(*_inputs()), expected, rtol=1e-5, atol=1e-6)

    # and peft's own writer names the same tensors, with the same config
    wrapped = peft.PeftModel(_base(), lora_config(_base(), 4, 8.0, "temporal"))
    peft.set_peft_model_state_dict(wrapped, read_adapter(ours).tensors)
    wrapped.save_pretrained(str(tmp_path / "peft"))
    theirs = read_adapter(tmp_path / "peft")
    ours_read = read_adapter(ours / WEIGHTS_NAME)  # the file itself works as well as its folder
    assert ours_read.tensors.keys() == theirs.tensors.keys()
    for k in theirs.tensors:
        torch.testing.assert_close(ours_read.tensors[k], theirs.tensors[k])
    a, b = (json.loads((d / CONFIG_NAME).read_text()) for d in (ours, tmp_path / "peft"))
    for key in ("peft_type", "r", "lora_alpha", "target_modules", "use_dora", "use_rslora"):
        value_a, value_b = a[key], b[key]
        if key == "target_modules":
            value_a, value_b = sorted(value_a), sorted(value_b)
        assert value_a == value_b, key
    assert ours_read.layout == "first_frame" and theirs.layout == ""


def test_bad_adapter_files_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="no LoRA adapter"):
        read_adapter(tmp_path / "missing")
    unet, cfg = _with_random_adapter(targets="spatial")
    folder = Adapter(cfg, adapter_tensors(unet)).save(tmp_path / "a")
    bigger = VideoUNet(VideoUNetConfig.from_dict({**_config().to_dict(), "block_out_channels": [16, 48]}))
    with pytest.raises(UserError, match="does not fit this U-Net"):
        merge_adapters(bigger, [(read_adapter(folder), 1.0)])
    (folder / CONFIG_NAME).write_text(json.dumps({"peft_type": "IA3"}))
    with pytest.raises(UserError, match="only LoRA"):
        read_adapter(folder)
