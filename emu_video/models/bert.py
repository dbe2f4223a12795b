"""A BERT-style sentence encoder (e.g. all-MiniLM-L6-v2, the default model's) without importing transformers.

The text encoders of a model folder are read with transformers, whose import alone (with the torch._dynamo
and torch.distributed modules it pulls in) costs about 3 s of the demo's start-up. For the common case of a
BERT encoder with a fast tokenizer file this module builds the same function from the same files: the
`tokenizers` library (what transformers' fast tokenizers run on) for the tokens, and a small post-LayerNorm
transformer (word + position + segment embeddings, self-attention and GELU MLP blocks) named as in
transformers' checkpoints, so `load_state_dict` reads them as they are. tests/models/test_bert.py checks it
against transformers' `AutoTokenizer` and `BertModel`.

`load_bert` returns None for a folder it does not represent exactly; the caller then uses transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BertEncoder", "WordPieceTokenizer", "load_bert"]


class WordPieceTokenizer:
    """The calls the text encoder makes of a transformers tokenizer, on the `tokenizers` library:
    `tokenizer(texts, padding="max_length" | "longest" | False, max_length=N, truncation=True,
    return_tensors="pt")` -> {"input_ids", "attention_mask"} ((B, L) LongTensors; lists without
    `return_tensors`, unbatched for a single string), and `convert_ids_to_tokens`."""

    def __init__(self, tokenizer, pad_id: int, pad_token: str):
        self.tokenizer = tokenizer
        self.pad_id = int(pad_id)
        self.pad_token = pad_token

    def __call__(self, texts, padding=False, max_length=None, truncation=False, return_tensors=None):
        tok = self.tokenizer
        tok.no_padding()
        tok.no_truncation()
        if truncation and max_length is not None:
            tok.enable_truncation(max_length=int(max_length))
        if padding in (True, "longest", "max_length"):
            length = int(max_length) if padding == "max_length" and max_length is not None else None
            tok.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token, length=length)
        single = isinstance(texts, str)
        encodings = tok.encode_batch([texts] if single else list(texts))
        ids = [e.ids for e in encodings]
        mask = [e.attention_mask for e in encodings]
        if return_tensors == "pt":
            return {"input_ids": torch.tensor(ids, dtype=torch.long), "attention_mask": torch.tensor(mask, dtype=torch.long)}
        return {"input_ids": ids[0], "attention_mask": mask[0]} if single else {"input_ids": ids, "attention_mask": mask}

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.tokenizer.id_to_token(int(i)) for i in ids]


class _Layer(nn.Module):
    def __init__(self, cfg: SimpleNamespace):
        super().__init__()
        d, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.heads = cfg.num_attention_heads
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        for name in ("query", "key", "value"):
            setattr(self.attention.self, name, nn.Linear(d, d))
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(d, d)
        self.attention.output.LayerNorm = nn.LayerNorm(d, eps=eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(d, cfg.intermediate_size)
        self.output = nn.Module()
        self.output.dense = nn.Linear(cfg.intermediate_size, d)
        self.output.LayerNorm = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        att = self.attention
        q, k, v = (getattr(att.self, name)(x).view(b, n, self.heads, d // self.heads).transpose(1, 2)
                   for name in ("query", "key", "value"))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(b, n, d)
        x = att.output.LayerNorm(att.output.dense(a) + x)
        h = self.output.dense(F.gelu(self.intermediate.dense(x)))
        return self.output.LayerNorm(h + x)


class BertEncoder(nn.Module):
    """`model(input_ids, attention_mask).last_hidden_state`: (B, L, hidden) hidden states of the last layer."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = cfg = SimpleNamespace(**config)
        d = cfg.hidden_size
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(cfg.vocab_size, d)
        self.embeddings.position_embeddings = nn.Embedding(cfg.max_position_embeddings, d)
        self.embeddings.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, d)
        self.embeddings.LayerNorm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SimpleNamespace:
        emb = self.embeddings
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device)
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions)[None] \
            + emb.token_type_embeddings.weight[0]  # one segment: type id 0 everywhere
        x = emb.LayerNorm(x)
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        keep = mask.bool()[:, None, None, :]  # (B, 1, 1, L): padding keys are ignored by every query
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return SimpleNamespace(last_hidden_state=x)


def _matches_normalizer(tokenizer_json: dict, tokenizer_config: dict) -> bool:
    """transformers' BERT fast tokenizer rebuilds the normalizer when tokenizer_config.json disagrees with
    tokenizer.json; only folders where they agree are read natively."""
    norm = tokenizer_json.get("normalizer") or {}
    if norm.get("type") != "BertNormalizer":
        return False
    return (norm.get("lowercase") == tokenizer_config.get("do_lower_case", True)
            and norm.get("strip_accents") == tokenizer_config.get("strip_accents")
            and norm.get("handle_chinese_chars") == tokenizer_config.get("tokenize_chinese_chars", True))


def load_bert(folder: Path, tokenizer_folder: Path) -> tuple[WordPieceTokenizer, BertEncoder] | None:
    """(tokenizer, encoder) of a BERT folder with tokenizer.json and model.safetensors, float32 on the CPU;
    None when the folder needs transformers (another architecture, other files or settings)."""
    files = [folder / "config.json", folder / "model.safetensors", tokenizer_folder / "tokenizer.json"]
    if not all(f.is_file() for f in files):
        return None
    config = json.loads(files[0].read_text())
    if (config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
            or config.get("is_decoder") or config.get("add_cross_attention")):
        return None
    tok_json = json.loads(files[2].read_text())
    tok_config_file = tokenizer_folder / "tokenizer_config.json"
    tok_config = json.loads(tok_config_file.read_text()) if tok_config_file.is_file() else {}
    if not _matches_normalizer(tok_json, tok_config) or tok_json.get("added_tokens") is None:
        return None
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    pad_token = tok_config.get("pad_token", "[PAD]")
    pad_token = pad_token.get("content", "[PAD]") if isinstance(pad_token, dict) else pad_token
    tokenizer = Tokenizer.from_file(str(files[2]))
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        return None
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size", "layer_norm_eps")
    model = BertEncoder({k: config[k] for k in keys if k in config} | {"layer_norm_eps": config.get("layer_norm_eps", 1e-12),
                                                                         "type_vocab_size": config.get("type_vocab_size", 2)})
    state = load_file(str(files[1]))
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        return None
    return WordPieceTokenizer(tokenizer, pad_id, pad_token), model.eval().requires_grad_(False)
