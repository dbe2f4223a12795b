"""Training data: manifests and tar shards of videos / images with captions, clip sampling and decoding,
a resumable rank-sharded batch stream that counts unusable files, and precomputed latent caches.

* :mod:`.manifest` -- JSONL / CSV manifests, manifests from a folder
* :mod:`.frames`   -- which frames make a clip, crop / resize / normalise
* :mod:`.decode`   -- PyAV / Pillow decoding from paths or bytes
* :mod:`.shards`   -- WebDataset tar shards (write, indexed read)
* :mod:`.datasets` -- pixel datasets keyed by (epoch, index)
* :mod:`.sampler`  -- the resumable sharded sampler
* :mod:`.loader`   -- batches of usable samples, skip counts, resumable position
* :mod:`.cache`    -- precomputed latents + text embeddings
"""

from emu_video.data.datasets import MediaSource, PixelDataset, Skipped
from emu_video.data.frames import ClipSpec, SampleSkipped, clip_indices, to_model_pixels
from emu_video.data.loader import BatchStream, collate
from emu_video.data.manifest import (
    ManifestRow,
    read_manifest,
    read_manifests,
    scan_folder,
    write_manifest,
)
from emu_video.data.sampler import SamplerState, ShardedSampler

__all__ = [
    "BatchStream",
    "ClipSpec",
    "ManifestRow",
    "MediaSource",
    "PixelDataset",
    "SampleSkipped",
    "SamplerState",
    "ShardedSampler",
    "Skipped",
    "clip_indices",
    "collate",
    "read_manifest",
    "read_manifests",
    "scan_folder",
    "to_model_pixels",
    "write_manifest",
]
