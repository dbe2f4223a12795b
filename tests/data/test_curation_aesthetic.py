"""The LAION aesthetic predictor loads from its public layout (.pth state dict) or safetensors, and computes
the public model's function: the MLP on the L2-normalised embedding, no activations."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from emu_video.data.curation.aesthetic import load_aesthetic
from emu_video.errors import UserError


def _public_state(dim=768, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = {0: (1024, dim), 2: (128, 1024), 4: (64, 128), 6: (16, 64), 7: (1, 16)}
    state = {}
    for i, (o, n) in sizes.items():
        state[f"layers.{i}.weight"] = torch.randn(o, n, generator=g) / n**0.5
        state[f"layers.{i}.bias"] = torch.randn(o, generator=g) * 0.1
    return state


def _reference(state, emb):
    x = emb / emb.norm(dim=-1, keepdim=True)
    for i in (0, 2, 4, 6, 7):
        x = F.linear(x, state[f"layers.{i}.weight"], state[f"layers.{i}.bias"])
    return x.squeeze(-1)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_loads_the_public_layout_and_matches_the_reference_function(tmp_path, suffix):
    state = _public_state()
    path = tmp_path / f"aesthetic{suffix}"
    (torch.save(state, path) if suffix == ".pth" else save_file(state, str(path)))
    model = load_aesthetic(path)
    emb = torch.randn(5, 768)
    torch.testing.assert_close(model(emb), _reference(state, emb))
    torch.testing.assert_close(model(emb * 3.0), model(emb))  # the embedding is normalised first


def test_wrong_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_aesthetic(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        load_aesthetic(tmp_path / "junk.pth")
    state = _public_state()
    del state["layers.7.bias"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(UserError, match="layout"):
        load_aesthetic(tmp_path / "partial.pth")
    save_file({"weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(UserError, match="not the LAION"):
        load_aesthetic(tmp_path / "other.safetensors")
