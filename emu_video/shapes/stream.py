"""Shapes World as a training dataset rendered on the fly: no files, no video decoding.

Items follow the training data's contract (`emu_video.data`): looked up by (epoch, index), each a dict
with `pixels` ((3, T, r, r) clips or (3, r, r) images: uint8 when rendered at the resolution itself, floats
in [-1, 1] when resized above the native 128 px), `caption` and `index`. Every epoch
draws fresh scenes; clips are taken from the 65-frame 16 fps scene with the stage's frames and fps.
two_object_fraction (default: the dataset's share for the kind) and motion_captions (the share of images
that are first frames of clips, captioned with their motions) shape the mix. With past_frames (extension
training), a share motion_change of the clips change their motions after the clip's first past_frames
frames, captioned with the new motions (emu_video/shapes/continuation.py).
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from emu_video.data.frames import (
    ClipSpec,
    clip_indices,
    sample_rng,
    to_model_pixels,
    to_uint8_pixels,
)
from emu_video.shapes import palette as P
from emu_video.shapes.continuation import continuation_sample
from emu_video.shapes.datasets import (
    IMAGE_TWO_OBJECT_FRACTION,
    VIDEO_TWO_OBJECT_FRACTION,
    image_sample,
    video_sample,
)
from emu_video.shapes.rename import rename_words

DEFAULT_EPOCH_SIZE = 1_000_000


class ShapesWorldDataset(Dataset):
    def __init__(self, kind: str, resolution: int, clip: ClipSpec | None = None, seed: int = 0,
                 epoch_size: int = DEFAULT_EPOCH_SIZE, two_object_fraction: float | None = None,
                 motion_captions: float = 0.0, past_frames: int = 0, motion_change: float = 0.0,
                 rename: dict[str, str] | None = None):
        if kind not in ("video", "image"):
            raise ValueError(f"kind must be video or image, got {kind!r}")
        if kind == "video" and clip is None:
            raise ValueError("a video dataset needs a clip spec (frames, fps)")
        self.kind, self.resolution, self.clip, self.seed = kind, int(resolution), clip, int(seed)
        self.epoch_size = int(epoch_size)
        if two_object_fraction is None:
            two_object_fraction = VIDEO_TWO_OBJECT_FRACTION if kind == "video" else IMAGE_TWO_OBJECT_FRACTION
        self.two_object_fraction, self.motion_captions = float(two_object_fraction), float(motion_captions)
        if motion_change and not (kind == "video" and 1 <= past_frames < clip.num_frames):
            raise ValueError("motion_change needs video clips and 1 <= past_frames < the clip's frames")
        self.past_frames, self.motion_change = int(past_frames), float(motion_change)
        self.rename = dict(rename or {})  # caption words said another way (emu_video/shapes/rename.py)

    def __len__(self) -> int:
        return self.epoch_size

    def _stream_index(self, epoch: int, index: int) -> int:
        return int(epoch) * self.epoch_size + int(index)

    def caption(self, index: int) -> str:
        return self[(0, index)]["caption"]

    def __getitem__(self, key):
        item = self._item(*key)
        if self.rename:
            item["caption"] = rename_words(item["caption"], self.rename)
        return item

    def _item(self, epoch, index):
        i = self._stream_index(epoch, index)
        size = self.resolution if self.resolution <= P.SIZE else P.SIZE
        if self.kind == "image":
            s = image_sample(self.seed, i, self.two_object_fraction, size=size, motion_captions=self.motion_captions)
            return {"pixels": self._pixels(s.image), "caption": s.caption, "index": index}
        frames = clip_indices(P.NUM_FRAMES, float(P.FPS), self.clip, sample_rng(self.seed, epoch, index))
        if self.motion_change:
            s = continuation_sample(self.seed, i, frames[self.past_frames - 1], self.motion_change,
                                    frames=np.asarray(frames), size=size, two_object_fraction=self.two_object_fraction)
            return {"pixels": self._pixels(s.frames), "caption": s.caption, "index": index}
        s = video_sample(self.seed, i, two_object_fraction=self.two_object_fraction, frames=np.asarray(frames),
                         size=size)
        return {"pixels": self._pixels(s.frames), "caption": s.caption, "index": index}

    def _pixels(self, frames: np.ndarray):
        if frames.shape[-2] == self.resolution:
            return to_uint8_pixels(frames)
        return to_model_pixels(frames, self.resolution)
