"""Writing model folders (the format `emu-video generate --model DIR` reads) from a stage's weights.

The folder is assembled next to its final place and swapped in, so a reader never sees half a model.
Unchanged parts of the model the stage started from (autoencoder, text encoders, other weights) are
hard-linked when the file system allows it, copied otherwise.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emu_video.pipelines.components import ModelIndex, write_model_index
from emu_video.training.model_setup import ModelSource


def link_or_copy(src: Path, dst: Path) -> None:
    """A file or folder tree at `dst` with `src`'s content (hard links where possible)."""
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            link_or_copy(child, dst / child.name)
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `final` (old content removed)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.*-*"):  # left by a process killed while exporting
        if stale.name.startswith((f".{final.name}.tmp-", f".{final.name}.old-")):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _relative_spec(spec: dict[str, Any], k: int, dst: Path) -> dict[str, Any]:
    """Copy one text encoder into the new folder and return its entry with paths relative to it."""
    if "package" in spec:
        return dict(spec)
    out = dict(spec)
    name = "text_encoder" if k == 0 else f"text_encoder_{k + 1}"
    src = Path(spec["path"])
    link_or_copy(src, dst / name)
    out["path"] = name
    if spec.get("tokenizer") and Path(spec["tokenizer"]) != src:
        tok = "tokenizer" if k == 0 else f"tokenizer_{k + 1}"
        link_or_copy(Path(spec["tokenizer"]), dst / tok)
        out["tokenizer"] = tok
    elif "tokenizer" in out:
        out["tokenizer"] = name
    return out


def base_index(src: ModelSource, dst: Path, keep_unet: bool) -> ModelIndex:
    """Bring the parts of `src` that this stage does not change into `dst`; return the index to update."""
    if src.folder is not None:
        index = copy.deepcopy(src.index)
        for rel in {index.vae, *([index.unet] if keep_unet else [])}:
            link_or_copy(src.folder / rel, dst / rel)
        for rel in index.weight_files().values():  # the other layouts' temporal weights
            if (src.folder / rel).exists():
                link_or_copy(src.folder / rel, dst / rel)
        specs = []
        for spec in index.text_encoders:
            if "package" in spec:
                specs.append(spec)
                continue
            for key in ("path", "tokenizer"):
                if key in spec and not Path(spec[key]).is_absolute() and (src.folder / spec[key]).exists():
                    link_or_copy(src.folder / spec[key], dst / spec[key])
            specs.append(spec)
        index.text_encoders = specs
        return index
    link_or_copy(src.vae_dir, dst / "vae")
    specs = [_relative_spec(s, k, dst) for k, s in enumerate(src.text_specs)]
    return ModelIndex(unet="unet", vae="vae", text_encoders=specs)


def finish_index(dst: Path, index: ModelIndex, note: str) -> None:
    index.description = (index.description + "; " if index.description else "") + note
    write_model_index(dst, index)
