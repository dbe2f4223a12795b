"""Precomputed training inputs: VAE latents and text embeddings, encoded once and read back by index.

Layout of a cache folder:

    cache.json                     what was encoded (clip spec, resolution, shapes, encoders, counts)
    null.safetensors               the empty-prompt embeddings (text_0, text_1, ...), for condition dropout
    latents-000000.safetensors     latents (n, C, [T,] h, w), text_0 (n, L0, D0), ..., index (n,) manifest rows
    captions.jsonl                 the caption of each cached item, in order

Training from a cache never loads the VAE or the text encoders. Each item holds one fixed clip (drawn
once, reproducibly from the seed), where training from files draws a new clip every epoch.
"""

from __future__ import annotations

import json
import os
import shutil
from bisect import bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset

from emu_video.data.datasets import PixelDataset, Skipped
from emu_video.data.loader import _identity, _worker_init
from emu_video.errors import UserError
from emu_video.io.jsonfile import read_json

CACHE_INDEX = "cache.json"
NULL_FILE = "null.safetensors"
CACHE_VERSION = 1


def read_cache_info(folder: str | os.PathLike) -> dict:
    path = Path(folder) / CACHE_INDEX
    if not path.exists():
        raise UserError(f"{folder} is not a training cache (no {CACHE_INDEX}); make one with `emu-video prepare-data`")
    info = read_json(path, "cache index")
    if info.get("version") != CACHE_VERSION:
        raise UserError(f"{path} has cache format {info.get('version')}, this version reads {CACHE_VERSION}")
    return info


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))


class _ShardWriter:
    def __init__(self, folder: Path, per_shard: int, dtype: torch.dtype):
        self.folder, self.per_shard, self.dtype = folder, per_shard, dtype
        self.buffer: dict[str, list[torch.Tensor]] = {}
        self.count = 0
        self.shards: list[dict] = []

    def add(self, latents: torch.Tensor, texts: Sequence[torch.Tensor], index: torch.Tensor) -> None:
        rows = {"latents": latents, "index": index, **{f"text_{k}": t for k, t in enumerate(texts)}}
        for k, v in rows.items():
            v = v.detach().cpu()
            self.buffer.setdefault(k, []).append(v if k == "index" else v.to(self.dtype))
        self.count += latents.shape[0]
        while self.count >= self.per_shard:
            self.flush(self.per_shard)

    def flush(self, n: int | None = None) -> None:
        if self.count == 0:
            return
        full = {k: torch.cat(v) for k, v in self.buffer.items()}
        n = self.count if n is None else n
        name = f"latents-{len(self.shards):06d}.safetensors"
        _save({k: v[:n] for k, v in full.items()}, self.folder / name)
        self.shards.append({"file": name, "count": n})
        self.buffer = {k: [v[n:]] for k, v in full.items()}
        self.count -= n


def write_cache(
    dataset: PixelDataset,
    out_dir: str | os.PathLike,
    encode_pixels: Callable[[torch.Tensor], torch.Tensor],
    encode_text: Callable[[list[str]], list[torch.Tensor]],
    info: dict,
    batch_size: int = 8,
    num_workers: int = 0,
    per_shard: int = 1024,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Encode every usable item of `dataset` (epoch 0 clips) into a cache folder, written atomically."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"{out} exists and is not empty (pass --overwrite to replace it)")
    staging = out.with_name(f".{out.name}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    keys = [(0, i) for i in range(len(dataset))]
    kwargs = dict(num_workers=num_workers, worker_init_fn=_worker_init) if num_workers > 0 else {}
    loader = DataLoader(dataset, batch_size=None, sampler=keys, collate_fn=_identity, **kwargs)
    writer = _ShardWriter(staging, max(1, per_shard), dtype)
    skipped: dict[str, int] = {}
    captions: list[str] = []
    pending: list[dict] = []

    def encode(batch: list[dict]) -> None:
        pixels = torch.stack([b["pixels"] for b in batch])
        caps = [b["caption"] for b in batch]
        writer.add(encode_pixels(pixels), encode_text(caps), torch.tensor([b["index"] for b in batch]))
        captions.extend(caps)

    from tqdm import tqdm

    for item in tqdm(loader, total=len(keys), desc="encoding", disable=not progress, leave=False):
        if isinstance(item, Skipped):
            skipped[item.reason] = skipped.get(item.reason, 0) + 1
            continue
        pending.append(item)
        if len(pending) == batch_size:
            encode(pending)
            pending = []
    if pending:
        encode(pending)
    writer.flush()
    if not writer.shards:
        raise UserError(f"no usable sample to cache ({sum(skipped.values())} skipped: {skipped})")
    null = encode_text([""])
    _save({f"text_{k}": t.to(dtype) for k, t in enumerate(null)}, staging / NULL_FILE)
    with open(staging / "captions.jsonl", "w", encoding="utf-8") as fh:
        for c in captions:
            fh.write(json.dumps({"caption": c}) + "\n")
    first = read_first_row(staging, writer.shards[0]["file"])
    info = {
        **info,
        "version": CACHE_VERSION,
        "count": len(captions),
        "skipped": skipped,
        "latent_shape": list(first["latents"].shape[1:]),
        "text_shapes": [list(first[f"text_{k}"].shape[1:]) for k in range(len(null))],
        "dtype": str(dtype).replace("torch.", ""),
        "shards": writer.shards,
    }
    (staging / CACHE_INDEX).write_text(json.dumps(info, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    return info


def read_first_row(folder: Path, name: str) -> dict[str, torch.Tensor]:
    with safe_open(str(folder / name), framework="pt") as f:
        return {k: f.get_slice(k)[0:1] for k in f.keys()}


class CachedDataset(Dataset):
    """Items {"latents", "text": [per encoder], "caption", "index"} of a cache folder (lazily memory-mapped)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.info = read_cache_info(self.folder)
        self.files = [s["file"] for s in self.info["shards"]]
        self.starts: list[int] = []
        total = 0
        for s in self.info["shards"]:
            self.starts.append(total)
            total += int(s["count"])
        self.count = total
        self.num_texts = len(self.info["text_shapes"])
        self.captions = [json.loads(line)["caption"] for line in open(self.folder / "captions.jsonl", encoding="utf-8")]
        self._handles: dict[int, object] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self.count

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_handles"] = {}
        return d

    def null_embeddings(self) -> list[torch.Tensor]:
        with safe_open(str(self.folder / NULL_FILE), framework="pt") as f:
            return [f.get_tensor(f"text_{k}").float() for k in range(self.num_texts)]

    def _handle(self, shard: int):
        if self._pid != os.getpid():
            self._handles, self._pid = {}, os.getpid()
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(self.folder / self.files[shard]), framework="pt")
        return self._handles[shard]

    def __getitem__(self, key):
        _, index = key
        shard = bisect_right(self.starts, index) - 1
        row = index - self.starts[shard]
        f = self._handle(shard)
        return {
            "latents": f.get_slice("latents")[row : row + 1][0].float(),
            "text": [f.get_slice(f"text_{k}")[row : row + 1][0].float() for k in range(self.num_texts)],
            "caption": self.captions[index],
            "index": index,
        }
