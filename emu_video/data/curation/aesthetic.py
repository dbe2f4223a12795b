"""The LAION improved aesthetic predictor: an MLP on L2-normalised CLIP ViT-L/14 image embeddings (768-d)
giving a 1-10 score, loaded from its public weight file (``sac+logos+ava1-l14-linearMSE.pth``, a state dict
with keys ``layers.{0,2,4,6,7}.{weight,bias}``) or from the same tensors in a ``.safetensors`` file.

The layer indices are those of the public model: Linear(768, 1024), Dropout, Linear(1024, 128), Dropout,
Linear(128, 64), Dropout, Linear(64, 16), Linear(16, 1), with no activations between them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from emu_video.errors import UserError


class AestheticPredictor(nn.Module):
    def __init__(self, embed_dim: int = 768):
        super().__init__()
        self.embed_dim = embed_dim
        self.layers = nn.Sequential(
            nn.Linear(embed_dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
        )

    @torch.no_grad()
    def forward(self, image_embeddings: torch.Tensor) -> torch.Tensor:
        """(N, embed_dim) CLIP image embeddings (normalised here) -> (N,) scores."""
        x = image_embeddings.float()
        x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return self.layers(x).squeeze(-1)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)  # tensors only: no code runs
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a state dict of the LAION aesthetic predictor")
    return state


def load_aesthetic(path) -> AestheticPredictor:
    """The predictor from a .pth / .safetensors file; a wrong file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"aesthetic predictor weights not found: {path}")
    try:
        state = _read_state(path)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path}: cannot read the aesthetic predictor ({type(exc).__name__}: {exc})") from exc
    first = state.get("layers.0.weight")
    if first is None or first.ndim != 2:
        raise UserError(f"{path}: not the LAION aesthetic predictor (no layers.0.weight)")
    model = AestheticPredictor(int(first.shape[1]))
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as exc:
        raise UserError(f"{path}: not the LAION aesthetic predictor's layout ({str(exc).splitlines()[0]})") from exc
    return model.eval()
