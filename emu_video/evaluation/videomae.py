"""VideoMAE features for the content-debiased FVD (Ge et al., "On the Content Bias in Fréchet Video Distance",
the `cd-fvd` package).

cd-fvd computes the Fréchet distance on the 1408-d features of VideoMAE-v2 ViT-g fine-tuned on
Something-Something-v2 (`vit_g_hybrid_pt_1200e_ssv2_ft.pth`): clips of 16 frames scaled to [0, 1] (no mean/std),
resized bilinearly to 224x224, and the features are the final `fc_norm` LayerNorm of the mean of the last
tokens. `--videomae` takes either
- a transformers folder (`config.json` + weights) of `VideoMAEForVideoClassification` (features: `fc_norm` of
  the token mean, as cd-fvd) or of `VideoMAEModel` (features: the token mean), or
- the VideoMAE-v2 checkpoint file itself (`.pth`/`.pt`), converted on load into `VideoMAEForVideoClassification`
  (the same network: pre-norm ViT blocks, q/v biases, fixed sine position table, GELU MLP).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emu_video.errors import UserError
from emu_video.evaluation.detectors import VideoNet

VIDEOMAE_SOURCES = (
    "VideoMAE-v2 ViT-g fine-tuned on SSv2, vit_g_hybrid_pt_1200e_ssv2_ft.pth (the file cd-fvd downloads, from "
    "https://pjlab-gvm-data.oss-cn-shanghai.aliyuncs.com/internvideo/videomaev2/vit_g_hybrid_pt_1200e_ssv2_ft.pth), "
    "or a transformers VideoMAE folder (config.json + model.safetensors)"
)


def videomae_preprocess(frames: np.ndarray, size: int = 224) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, T, size, size) in [0, 1], resized bilinearly straight to size x size
    (cd-fvd's `preprocess_videomae`: no crop, no antialiasing, no mean/std)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 255.0  # (3, T, H, W)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.contiguous()


class VideoMAEFeatures(torch.nn.Module):
    """(B, 3, T, H, W) clips -> (B, D): the mean of the last tokens, through `fc_norm` when the model has one."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoder = getattr(self.model, "videomae", self.model)
        tokens = encoder(pixel_values=x.transpose(1, 2)).last_hidden_state  # transformers wants (B, T, 3, H, W)
        pooled = tokens.mean(dim=1)
        fc_norm = getattr(self.model, "fc_norm", None)
        return fc_norm(pooled) if fc_norm is not None else pooled


def convert_videomaev2_state(state: dict, num_heads: int | None = None, image_size: int = 224,
                             num_frames: int = 16):
    """The VideoMAE-v2 fine-tuned ViT state dict (`patch_embed.proj`, `blocks.N.attn.qkv`, `fc_norm`, `head`) as a
    transformers `VideoMAEForVideoClassification`. The head count, frame size and clip length are not in the
    shapes: 16 heads for ViT-g (1408 wide), else width / 64 (ViT-S/B/L/H), 224 px and 16 frames, unless given."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        proj = state["patch_embed.proj.weight"]  # (D, 3, tubelet, p, p)
        depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
        width, tubelet, patch = proj.shape[0], proj.shape[2], proj.shape[3]
        mlp = state["blocks.0.mlp.fc1.weight"].shape[0]
        classes = state["head.weight"].shape[0] if "head.weight" in state else 0
        if "fc_norm.weight" not in state:
            raise KeyError("fc_norm.weight")
    except (KeyError, ValueError, AttributeError, IndexError) as exc:
        raise UserError(f"not a VideoMAE-v2 fine-tuned ViT state dict (missing {exc}); expected "
                        f"{VIDEOMAE_SOURCES}") from None
    heads = num_heads or (16 if width == 1408 else max(1, width // 64))
    config = VideoMAEConfig(
        image_size=image_size, patch_size=patch, num_channels=3, num_frames=num_frames, tubelet_size=tubelet, hidden_size=width,
        num_hidden_layers=depth, num_attention_heads=heads, intermediate_size=mlp, hidden_act="gelu",
        layer_norm_eps=1e-6, qkv_bias=True, qv_bias=True, use_mean_pooling=True, num_labels=max(classes, 1),
    )
    model = VideoMAEForVideoClassification(config)
    # transformers 5 names the q/v biases query.bias / value.bias; earlier releases q_bias / v_bias
    names = model.state_dict()
    q_bias, v_bias = (("query.bias", "value.bias") if "videomae.encoder.layer.0.attention.attention.query.bias" in names
                      else ("q_bias", "v_bias"))
    new = {"videomae.embeddings.patch_embeddings.projection.weight": proj,
           "videomae.embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
           "fc_norm.weight": state["fc_norm.weight"], "fc_norm.bias": state["fc_norm.bias"]}
    if classes:
        new["classifier.weight"], new["classifier.bias"] = state["head.weight"], state["head.bias"]
    for i in range(depth):
        src, dst = f"blocks.{i}.", f"videomae.encoder.layer.{i}."
        q, k, v = state[src + "attn.qkv.weight"].chunk(3, dim=0)
        new.update({
            dst + "attention.attention.query.weight": q, dst + "attention.attention.key.weight": k,
            dst + "attention.attention.value.weight": v,
            dst + "attention.attention." + q_bias: state[src + "attn.q_bias"],
            dst + "attention.attention." + v_bias: state[src + "attn.v_bias"],
            dst + "attention.output.dense.weight": state[src + "attn.proj.weight"],
            dst + "attention.output.dense.bias": state[src + "attn.proj.bias"],
            dst + "layernorm_before.weight": state[src + "norm1.weight"],
            dst + "layernorm_before.bias": state[src + "norm1.bias"],
            dst + "layernorm_after.weight": state[src + "norm2.weight"],
            dst + "layernorm_after.bias": state[src + "norm2.bias"],
            dst + "intermediate.dense.weight": state[src + "mlp.fc1.weight"],
            dst + "intermediate.dense.bias": state[src + "mlp.fc1.bias"],
            dst + "output.dense.weight": state[src + "mlp.fc2.weight"],
            dst + "output.dense.bias": state[src + "mlp.fc2.bias"],
        })
    missing, unexpected = model.load_state_dict(new, strict=False)
    missing = [k for k in missing if "position_embeddings" not in k]
    if missing or unexpected:
        raise UserError(f"the VideoMAE-v2 checkpoint does not fit a VideoMAE ViT (missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]})")
    return model


def _load_model(path: Path):
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{path} has no config.json: expected {VIDEOMAE_SOURCES}")
        from transformers import (
            AutoConfig,
            VideoMAEForVideoClassification,
            VideoMAEModel,
        )

        config = AutoConfig.from_pretrained(path)
        if config.model_type != "videomae":
            raise UserError(f"{path} holds a {config.model_type!r} model, not VideoMAE: expected {VIDEOMAE_SOURCES}")
        classify = any("Classification" in a for a in (config.architectures or []))
        cls = VideoMAEForVideoClassification if classify else VideoMAEModel
        return cls.from_pretrained(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and tensor errors: not a checkpoint
        raise UserError(f"cannot read VideoMAE weights {path} ({exc}); expected {VIDEOMAE_SOURCES}") from None
    for key in ("model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a state dict; expected {VIDEOMAE_SOURCES}")
    return convert_videomaev2_state(state)


def load_videomae(path, device="cpu", dtype=torch.float32) -> VideoNet:
    if path is None:
        raise UserError(f"cdfvd needs VideoMAE weights: pass --videomae with {VIDEOMAE_SOURCES}")
    path = Path(path)
    if not path.exists():
        raise UserError(f"VideoMAE weights not found: {path}; expected {VIDEOMAE_SOURCES}")
    model = _load_model(path)
    config = model.config
    net = VideoMAEFeatures(model).eval().to(torch.device(device), dtype)
    return VideoNet(net, "videomae", torch.device(device), dtype, min_frames=config.num_frames,
                    exact_frames=config.num_frames, input_size=config.image_size)


def weights_digest(path) -> str:
    """SHA-256 of the weight file, or of a folder's config and weight files (names and contents)."""
    from emu_video.evaluation.feature_cache import file_sha256

    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.name == "config.json" or f.suffix in (".safetensors", ".bin", ".pt", ".pth")):
            h.update(f.name.encode() + b"\0" + file_sha256(f).encode())
    return h.hexdigest()
