"""Optimizer state and random-number state as safetensors / JSON (never pickle), for exact resumption."""

from __future__ import annotations

import base64
import random
from typing import Callable

import numpy as np
import torch

SEP = "::"
NamedParams = list[tuple[str, torch.nn.Parameter]]


def optimizer_tensors(optimizer: torch.optim.Optimizer, named: NamedParams,
                      full_tensor: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every per-parameter state entry as `name::key` -> full tensor (call on every rank: may gather)."""
    out: dict[str, torch.Tensor] = {}
    for name, p in named:
        for key, value in sorted(optimizer.state.get(p, {}).items()):
            value = full_tensor(value) if torch.is_tensor(value) else torch.tensor(value)
            out[f"{name}{SEP}{key}"] = value.detach().cpu().clone()
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, named: NamedParams, tensors: dict[str, torch.Tensor],
                           shard_like: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    per_param: dict[str, dict[str, torch.Tensor]] = {}
    for full_key, value in tensors.items():
        name, _, key = full_key.partition(SEP)
        per_param.setdefault(name, {})[key] = value
    known = {n for n, _ in named}
    unknown = sorted(set(per_param) - known)
    if unknown:
        raise ValueError(f"optimizer state for parameters this model does not train: {unknown[:3]}")
    for name, p in named:
        entries = per_param.get(name)
        if not entries:
            continue
        state = {}
        for key, value in entries.items():
            # 0-d entries (AdamW's step) stay on the CPU as AdamW keeps them; moments take the weight's layout.
            state[key] = value.clone() if value.ndim == 0 else shard_like(value, p)
        optimizer.state[p] = state


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def rng_state() -> dict:
    """The global RNGs (torch CPU / CUDA, Python, NumPy) as JSON-able values."""
    np_state = np.random.get_state()
    d = {
        "torch": _b64(torch.get_rng_state()),
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        d["cuda"] = _b64(torch.cuda.get_rng_state())
    return d


def set_rng_state(d: dict) -> None:
    if "torch" in d:
        torch.set_rng_state(_unb64(d["torch"]))
    if "python" in d:
        v, internal, gauss = d["python"]
        random.setstate((v, tuple(internal), gauss))
    if "numpy" in d:
        name, keys, pos, has_gauss, cached = d["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in d and torch.cuda.is_available():
        torch.cuda.set_rng_state(_unb64(d["cuda"]))


def step_generator(seed: int, rank: int, step: int, micro: int = 0, device: torch.device | str = "cpu"
                   ) -> torch.Generator:
    """The noise / timestep / dropout stream of one micro-step of one rank, on the training device: a pure
    function of its position, so resuming at any step draws exactly what the uninterrupted run drew."""
    mixed = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(rank), int(step), int(micro)]).generate_state(2)
    return torch.Generator(device).manual_seed((int(mixed[0]) & 0x7FFFFFFF) << 32 | int(mixed[1]))
