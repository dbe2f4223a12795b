"""`FrameAutoencoder.optimize_for_inference`: what it switches on where, and that decoding keeps its result."""

import torch
from builders import write_tiny_vae

from emu_video.models import fast
from emu_video.models.autoencoder import FrameAutoencoder


def test_optimize_for_inference_stays_eager_on_cpu_and_compiles_channels_last_when_asked(tmp_path, monkeypatch):
    vae = FrameAutoencoder.from_pretrained(write_tiny_vae(tmp_path / "vae"), chunk_size=3)
    z = torch.randn(1, vae.latent_channels, 5, 8, 8)
    expected = vae.decode(z)

    vae.optimize_for_inference()  # CPU: eager GroupNorm would copy channels-last activations, so nothing changes
    assert not vae.compiled and vae.memory_format == torch.contiguous_format

    compiled = []
    monkeypatch.setattr(fast, "compile_regions", lambda parts, **kw: compiled.append((parts, kw)))
    vae.optimize_for_inference(compile=True)
    assert vae.compiled and vae.memory_format == torch.channels_last
    assert compiled and compiled[0][0] == [vae.vae.encoder, vae.vae.decoder] and compiled[0][1]["dynamic"] is False
    assert vae.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    out = vae.decode(z)
    assert out.shape == expected.shape == (1, 3, 5, 16, 16)  # two levels: 2x upsampling
    assert (out - expected).abs().max().item() < 1e-5
