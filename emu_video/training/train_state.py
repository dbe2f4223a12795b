"""Optimizer state and random-number state as safetensors / JSON (never pickle), for exact resumption, and
the per-sample random draws of a training step."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Sequence

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
    on_device = {id(q) for g in optimizer.param_groups if g.get("fused") or g.get("capturable") for q in g["params"]}
    for name, p in named:
        entries = per_param.get(name)
        if not entries:
            continue
        state = {}
        for key, value in entries.items():
            # 0-d entries (AdamW's step) stay on the CPU as plain AdamW keeps them, on the weight's device for
            # fused or capturable AdamW; an integer one was a Python number (8-bit AdamW's step). Moments take
            # the weight's layout; other state (8-bit AdamW's quantised moments, their code books and scales)
            # keeps its own dtype.
            if value.ndim == 0 and not value.is_floating_point():
                state[key] = int(value.item())
            elif value.ndim == 0:
                state[key] = value.clone().to(p.device) if id(p) in on_device else value.clone()
            elif value.shape == p.shape and value.dtype == p.dtype:
                state[key] = shard_like(value, p)
            else:
                state[key] = value.clone().to(p.device)
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


def keyed_generator(key: Sequence[int], device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on `device` seeded from a tuple of integers (mixed, so nearby keys give unrelated streams)."""
    mixed = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in key]).generate_state(2)
    return torch.Generator(device).manual_seed((int(mixed[0]) & 0x7FFFFFFF) << 32 | int(mixed[1]))


class SampleRandom:
    """The random draws of one micro-batch (noise, timesteps, dropout, augmentation, crops), made per sample
    from a stream keyed by (seed, step, the sample's dataset index).

    What a sample draws therefore does not depend on how the global batch is split: two processes of
    batch B, one process of batch 2B, or one of batch B with two accumulation micro-steps all draw the same
    noise for the same sample, and so reach the same losses. It is also a pure function of the step, so a
    resumed run draws exactly what the uninterrupted run drew. Every draw returns `rows` values per call
    split evenly over the samples (e.g. the frames of each clip), on the generators' device.
    """

    def __init__(self, seed: int, step: int, indices: Sequence[int], device: torch.device | str = "cpu"):
        if not len(indices):
            raise ValueError("a micro-batch without samples has nothing to draw for")
        self.device = torch.device(device)
        self.generators = [keyed_generator((seed, step, int(i)), self.device) for i in indices]

    def __len__(self) -> int:
        return len(self.generators)

    def _per_sample(self, rows: int | None) -> int:
        """Values per sample for `rows` values in all (None: one per sample)."""
        rows = len(self.generators) if rows is None else rows
        if rows % len(self.generators):
            raise ValueError(f"{rows} rows do not split evenly over {len(self.generators)} samples")
        return rows // len(self.generators)

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        k = self._per_sample(int(shape[0]))
        return torch.cat([torch.randn((k, *shape[1:]), generator=g, device=self.device) for g in self.generators])

    def randint(self, low: int, high: int, rows: int | None = None) -> torch.Tensor:
        k = self._per_sample(rows)
        return torch.cat([torch.randint(low, high, (k,), generator=g, device=self.device) for g in self.generators])

    def rand(self, rows: int | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        k = self._per_sample(rows)
        return torch.cat([torch.rand(k, generator=g, device=self.device, dtype=dtype) for g in self.generators])
