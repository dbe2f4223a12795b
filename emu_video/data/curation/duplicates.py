"""Near-duplicate clips: perceptual hashes (imagehash's DCT pHash, 64 bits) of a few frames of each clip.

Two clips are duplicates when the mean Hamming distance between their hashes at the same relative positions
(10 %, 50 % and 90 % of the clip) is at most `max_distance` bits. Re-encodes, rescales and small colour changes
of one video stay within a few bits; different content lands near 32. Of a group of duplicates the first kept
clip (the highest resolution, then the longest, then the first in the manifest) stays.
"""

from __future__ import annotations

import numpy as np

POSITIONS = (0.1, 0.5, 0.9)
DEFAULT_MAX_DISTANCE = 6


def clip_hashes(thumbnails: list[np.ndarray]) -> list[str]:
    """Hex pHashes of the thumbnails at POSITIONS of the clip."""
    import imagehash
    from PIL import Image

    if not thumbnails:
        return []
    picks = [thumbnails[min(len(thumbnails) - 1, int(p * len(thumbnails)))] for p in POSITIONS]
    return [str(imagehash.phash(Image.fromarray(t))) for t in picks]


def find_duplicates(candidates: list[tuple], max_distance: float = DEFAULT_MAX_DISTANCE) -> dict:
    """{key: key of the clip it duplicates} over (key, hashes) pairs given in order of preference."""
    import imagehash

    kept: list[tuple] = []
    duplicate_of: dict = {}
    for key, hashes in candidates:
        if not hashes:
            continue
        bits = np.stack([imagehash.hex_to_hash(h).hash.ravel() for h in hashes])
        for other, other_bits in kept:
            if other_bits.shape == bits.shape and (other_bits != bits).sum(axis=1).mean() <= max_distance:
                duplicate_of[key] = other
                break
        else:
            kept.append((key, bits))
    return duplicate_of
