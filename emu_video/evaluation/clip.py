"""CLIP from a local `transformers` folder: frame and text embeddings, frame-to-text cosine similarity.

Used by CLIPSIM (mean frame-to-prompt cosine, reported x1 as the papers do) and the paper's image-to-video
metrics (App. Table 6). The folder is any `CLIPModel` saved with `save_pretrained` or downloaded from the
Hugging Face hub, e.g. `openai/clip-vit-base-patch32` (the papers' ViT-B/32).

Image preprocessing is done in torch, batched and on the model's device, the way `CLIPImageProcessor` does it:
shorter side resized to the processor's `shortest_edge` with bicubic (antialiased, PIL-style) filtering,
centre crop, rescale to [0, 1], CLIP mean/std. uint8 frames are rounded back to uint8 after the resize as the
PIL path does, so frame-to-text cosines agree with `CLIPProcessor` + `CLIPModel` to 1e-3 (PIL's fixed-point kernels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from emu_video.errors import UserError

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _missing(path: Path, why: str) -> UserError:
    return UserError(
        f"CLIP folder {path}: {why}; it must be a local transformers CLIP folder, e.g. openai/clip-vit-base-patch32 "
        "(download it from huggingface.co/openai/clip-vit-base-patch32 on a machine with network, then pass the folder)"
    )


@dataclass(frozen=True)
class ClipPreprocess:
    """Resize-shorter-side, centre-crop and normalisation settings read from the folder's processor config."""

    shortest_edge: int
    crop: tuple[int, int]
    mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    std: tuple[float, float, float] = OPENAI_CLIP_STD

    @classmethod
    def from_folder(cls, path: Path, image_size: int) -> "ClipPreprocess":
        from transformers.image_processing_utils import ImageProcessingMixin

        try:
            cfg, _ = ImageProcessingMixin.get_image_processor_dict(str(path))
        except (OSError, ValueError):
            cfg = {}
        size = cfg.get("size", {"shortest_edge": image_size})
        short = size.get("shortest_edge") if isinstance(size, dict) else int(size)
        if short is None:  # {"height": h, "width": w}: CLIP folders resize to a square before the crop.
            short = min(size["height"], size["width"])
        crop = cfg.get("crop_size", {"height": image_size, "width": image_size})
        if not isinstance(crop, dict):
            crop = {"height": int(crop), "width": int(crop)}
        return cls(
            shortest_edge=int(short),
            crop=(int(crop["height"]), int(crop["width"])),
            mean=tuple(cfg.get("image_mean", OPENAI_CLIP_MEAN)),
            std=tuple(cfg.get("image_std", OPENAI_CLIP_STD)),
        )

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) or float (N, 3, H, W) in [0, 1] -> normalised float32 (N, 3, crop_h, crop_w)."""
        is_uint8 = frames.dtype == torch.uint8
        if is_uint8:
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise UserError(f"uint8 frames must be shaped (N, H, W, 3), got {tuple(frames.shape)}")
            x = frames.permute(0, 3, 1, 2).float()
        else:
            if frames.ndim != 4 or frames.shape[1] != 3:
                raise UserError(f"float frames must be shaped (N, 3, H, W) in [0, 1], got {tuple(frames.shape)}")
            x = frames.float() * 255.0
        h, w = x.shape[-2:]
        # transformers' get_resize_output_image_size: the shorter side becomes `shortest_edge`, the longer one
        # is scaled and truncated to int.
        if h <= w:
            new_h, new_w = self.shortest_edge, int(self.shortest_edge * w / h)
        else:
            new_h, new_w = int(self.shortest_edge * h / w), self.shortest_edge
        if (new_h, new_w) != (h, w):
            x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
        x = x.clamp(0, 255)
        if is_uint8:
            x = x.round()
        ch, cw = self.crop
        top, left = max((new_h - ch) // 2, 0), max((new_w - cw) // 2, 0)
        if new_h < ch or new_w < cw:  # smaller than the crop: zero-pad around it, as the processor does.
            pad_h, pad_w = max(ch - new_h, 0), max(cw - new_w, 0)
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
            top, left = max((x.shape[-2] - ch) // 2, 0), max((x.shape[-1] - cw) // 2, 0)
        x = x[..., top : top + ch, left : left + cw] / 255.0
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


class ClipScorer:
    """A CLIP model and tokenizer with batched, L2-normalised embeddings."""

    def __init__(self, model, tokenizer, preprocess: ClipPreprocess, device="cpu", dtype=torch.float32,
                 batch_size: int = 64):
        self.model = model.to(device=device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.device = torch.device(device)
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_text_tokens = int(model.config.text_config.max_position_embeddings)

    @staticmethod
    def _features(out) -> torch.Tensor:
        # transformers 4 returns the projected embeddings; 5 may wrap them in a ModelOutput.
        if isinstance(out, torch.Tensor):
            return out
        return out.pooler_output if getattr(out, "pooler_output", None) is not None else out[0]

    @torch.no_grad()
    def image_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) or float (N, 3, H, W) in [0, 1] -> (N, D) L2-normalised float32 on the device."""
        if not isinstance(frames, torch.Tensor):
            frames = torch.as_tensor(frames)
        out = []
        for i in range(0, frames.shape[0], self.batch_size):
            pixels = self.preprocess(frames[i : i + self.batch_size].to(self.device))
            feats = self._features(self.model.get_image_features(pixel_values=pixels.to(self.dtype)))
            out.append(F.normalize(feats.float(), dim=-1))
        if not out:
            raise UserError("no frames to embed")
        return torch.cat(out)

    @torch.no_grad()
    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        """list of M strings -> (M, D) L2-normalised float32 on the device (truncated to the model's tokens)."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            raise UserError("no texts to embed")
        out = []
        for i in range(0, len(texts), self.batch_size):
            tok = self.tokenizer(list(texts[i : i + self.batch_size]), padding=True, truncation=True,
                                 max_length=self.max_text_tokens, return_tensors="pt")
            feats = self._features(self.model.get_text_features(
                input_ids=tok["input_ids"].to(self.device), attention_mask=tok["attention_mask"].to(self.device)))
            out.append(F.normalize(feats.float(), dim=-1))
        return torch.cat(out)

    def similarity(self, frames: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """(N,) cosine of each frame with its text (texts of length N, or one text for all frames); no x100."""
        if isinstance(texts, str):
            texts = [texts]
        n = frames.shape[0]
        if len(texts) not in (1, n):
            raise UserError(f"similarity needs one text or one per frame: got {len(texts)} texts for {n} frames")
        img = self.image_embeddings(frames)
        txt = self.text_embeddings(texts)
        return (img * txt).sum(-1)


def load_clip(path, device="cpu", dtype=torch.float32) -> ClipScorer:
    """Load a CLIP model and its tokenizer from a local transformers folder (no download is ever attempted)."""
    from transformers import AutoTokenizer, CLIPModel

    from emu_video.models._quiet import quiet_libraries

    quiet_libraries()
    path = Path(path)
    if not path.is_dir():
        raise _missing(path, "not found")
    if not (path / "config.json").is_file():
        raise _missing(path, "has no config.json")
    try:
        model = CLIPModel.from_pretrained(str(path), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _missing(path, f"cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    preprocess = ClipPreprocess.from_folder(path, int(model.config.vision_config.image_size))
    return ClipScorer(model, tokenizer, preprocess, device=device, dtype=dtype)
