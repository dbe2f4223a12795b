"""Video networks for FVD (I3D) and IS (C3D), loaded from the public checkpoint files users already have.

I3D accepts two formats:
- `i3d_pretrained_400.pt`: a PyTorch state dict of the piergiaj/pytorch-i3d network (TATS, `cd-fvd`), loaded
  into `emu_video.evaluation.i3d.InceptionI3d`;
- `i3d_torchscript.pt`: StyleGAN-V's TorchScript port of the TF-Hub I3D used by the original FVD code, called
  as `model(x, rescale=False, resize=False, return_features=True)` on the same 224x224 [-1, 1] clips.
C3D accepts StyleGAN-V's TorchScript `c3d_ucf101.pt` (the TGAN-v2 UCF-101 C3D), called like StyleGAN-V does.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emu_video.errors import UserError
from emu_video.evaluation.i3d import MIN_FRAMES, InceptionI3d

I3D_SOURCES = (
    "i3d_pretrained_400.pt (the file the cd-fvd package downloads, "
    "https://github.com/songweige/TATS/raw/main/tats/fvd/i3d_pretrained_400.pt) or StyleGAN-V's i3d_torchscript.pt "
    "(https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt)"
)
C3D_SOURCES = "StyleGAN-V's c3d_ucf101.pt (https://www.dropbox.com/s/jxpu7avzdc9n97q/c3d_ucf101.pt)"


def _require_file(path, what: str, sources: str) -> Path:
    if path is None:
        raise UserError(f"{what} needs a weight file: download {sources} and pass its path")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} weight file not found: {path}; download {sources}")
    return path


def is_torchscript(path: Path) -> bool:
    """TorchScript archives hold `<name>/code/...` and `<name>/constants.pkl`; torch.save state dicts do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def i3d_preprocess(frames: np.ndarray, size: int = 224) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, T, size, size) in [-1, 1].

    Square clips are resized straight to size x size with bilinear filtering (cd-fvd's `preprocess_i3d`);
    other shapes first get their shorter side scaled to `size` (rounded up), then a centre crop (StyleGAN-V's
    and common_metrics_on_video_quality's resize-and-crop).
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    h, w = x.shape[-2:]
    if h == w:
        target = (size, size)
    elif h < w:
        target = (size, math.ceil(w * size / h))
    else:
        target = (math.ceil(h * size / w), size)
    if target != (h, w):
        x = F.interpolate(x, size=target, mode="bilinear", align_corners=False)
    top, left = (target[0] - size) // 2, (target[1] - size) // 2
    x = x[:, :, top : top + size, left : left + size]
    return (2.0 * x / 255.0 - 1.0).permute(1, 0, 2, 3).contiguous()


@dataclass
class VideoNet:
    """A loaded network with its calling convention: `features(batch) -> (B, D) float32`."""

    model: torch.nn.Module
    kind: str
    device: torch.device
    dtype: torch.dtype
    min_frames: int = 1
    exact_frames: int | None = None  # a network with fixed position embeddings takes clips of this length only
    input_size: int | None = None  # frame side the network expects, where it fixes one

    @torch.no_grad()
    def features(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(self.device, self.dtype, non_blocking=True)
        if self.kind == "i3d-torchscript":
            out = self.model(x, rescale=False, resize=False, return_features=True)
        else:
            out = self.model(x)
        return out.float()


def load_i3d(path, device="cpu", dtype=torch.float32) -> VideoNet:
    """I3D from `i3d_pretrained_400.pt` (state dict) or `i3d_torchscript.pt` (TorchScript); see the module doc."""
    path = _require_file(path, "FVD (I3D)", I3D_SOURCES)
    device = torch.device(device)
    if is_torchscript(path):
        model = torch.jit.load(str(path), map_location=device).eval().to(dtype)
        return VideoNet(model, "i3d-torchscript", device, dtype, min_frames=MIN_FRAMES)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and tensor errors: the file is not a state dict
        raise UserError(f"cannot read I3D weights {path} ({exc}); expected {I3D_SOURCES}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()} if isinstance(state, dict) else state
    model = InceptionI3d()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise UserError(f"{path} is not an I3D Kinetics-400 state dict ({first}); expected {I3D_SOURCES}") from None
    return VideoNet(model.eval().to(device, dtype), "i3d", device, dtype, min_frames=MIN_FRAMES)


def c3d_preprocess(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, T, H, W) in [0, 255]: StyleGAN-V hands the clip to its C3D like this and
    the TorchScript resizes and normalises inside."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float()


def load_c3d(path, device="cpu", dtype=torch.float32) -> VideoNet:
    """The UCF-101 C3D classifier as StyleGAN-V's TorchScript `c3d_ucf101.pt` (16-frame clips)."""
    path = _require_file(path, "IS (C3D)", C3D_SOURCES)
    if not is_torchscript(path):
        raise UserError(f"{path} is not a TorchScript file; IS expects {C3D_SOURCES}")
    device = torch.device(device)
    model = torch.jit.load(str(path), map_location=device).eval().to(dtype)
    return VideoNet(model, "c3d-torchscript", device, dtype)
