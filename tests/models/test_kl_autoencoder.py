"""The autoencoder built without diffusers computes what diffusers' AutoencoderKL computes from the same folder."""

import json

import pytest
import torch

from builders import write_tiny_vae
from emu_video.models.autoencoder import FrameAutoencoder
from emu_video.models.kl_autoencoder import KLAutoencoder, supports


@pytest.fixture(scope="module")
def vae_folder(tmp_path_factory):
    folder = write_tiny_vae(tmp_path_factory.mktemp("vae") / "vae", latent_channels=4, seed=3)
    from diffusers import AutoencoderKL

    ref = AutoencoderKL.from_pretrained(folder)
    with torch.no_grad():  # random weights everywhere (diffusers zero-inits nothing here, but be sure)
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ref.save_pretrained(folder, safe_serialization=True)
    return folder


def test_native_autoencoder_matches_diffusers(vae_folder):
    from diffusers import AutoencoderKL

    ref = AutoencoderKL.from_pretrained(vae_folder).eval()
    nat = KLAutoencoder.from_folder(vae_folder)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 40, generator=g) * 2 - 1  # not square, odd latent size
    z = torch.randn(2, 4, 7, 5, generator=g)
    with torch.no_grad():
        a, b = ref.encode(x).latent_dist, nat.encode(x).latent_dist
        torch.testing.assert_close(b.mean, a.mean, rtol=1e-5, atol=1e-5)
        s1 = a.sample(torch.Generator().manual_seed(5))
        s2 = b.sample(torch.Generator().manual_seed(5))
        torch.testing.assert_close(s2, s1, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(nat.decode(z).sample, ref.decode(z).sample, rtol=1e-5, atol=1e-5)


def test_frame_autoencoder_loads_natively_and_agrees_with_the_diffusers_load(vae_folder):
    fast = FrameAutoencoder.from_pretrained(vae_folder)
    slow = FrameAutoencoder.from_pretrained(vae_folder, native=False)
    assert isinstance(fast.vae, KLAutoencoder) and not isinstance(slow.vae, KLAutoencoder)
    assert (fast.latent_channels, fast.downscale, fast.scaling_factor) == (slow.latent_channels, slow.downscale,
                                                                           slow.scaling_factor)
    video = torch.rand(1, 3, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.testing.assert_close(fast.encode(video), slow.encode(video), rtol=1e-5, atol=1e-5)
    z = slow.encode(video)
    torch.testing.assert_close(fast.decode(z), slow.decode(z), rtol=1e-5, atol=1e-5)


def test_folders_it_cannot_build_go_to_diffusers(vae_folder, tmp_path):
    cfg = json.loads((vae_folder / "config.json").read_text())
    assert supports(cfg)
    assert not supports({**cfg, "act_fn": "gelu"})
    assert not supports({**cfg, "down_block_types": ["SomethingElse2D"] * len(cfg["block_out_channels"])})
    assert not supports({**cfg, "latents_mean": [0.0] * 4, "latents_std": [1.0] * 4})
    # weights under other names: the native build refuses them and diffusers reads the folder
    from safetensors.torch import load_file, save_file

    other = tmp_path / "vae"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(cfg))
    state = load_file(str(vae_folder / "diffusion_pytorch_model.safetensors"))
    state["decoder.extra.weight"] = torch.zeros(1)
    save_file(state, str(other / "diffusion_pytorch_model.safetensors"))
    assert FrameAutoencoder._native(other) is None
