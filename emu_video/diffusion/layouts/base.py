"""What a conditioning layout is: which frames of a clip are known, where they go, and how they are prepared.

Every video task of Emu Video is the same U-Net input, concat([noisy latents, conditioning latents, mask]):
the known frames are placed at their positions in a zero video, and the mask is 1 there. A `Layout` says
which positions those are, whether the known frames are noise-augmented, which temporal weights (and so which
noise schedule) sample it, how a training clip becomes the model input, and which guidance samples it.
Training tasks (`emu_video/training/task_diffusion.py`) and pipelines (`emu_video/pipelines/`) both go
through it, so a layout is written once.

A new layout is one file with a subclass plus its entry in `layouts/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch

from emu_video.errors import UserError

from ..conditioning import place_frames, positions_slice, unet_input
from ..dropout import apply_image_dropout
from ..guidance import ClassifierFreeGuidance, Guidance, TwoConditionGuidance
from ..parameterization import add_noise

Randn = Callable[[tuple[int, ...]], torch.Tensor]  # noise of the micro-batch's samples, on the device
Randint = Callable[[int, int], torch.Tensor]  # one integer per sample in [low, high), on the device


@dataclass(frozen=True)
class Layout:
    """Base class. Subclasses set the class attributes and implement `positions`.

    Instances are frozen dataclasses whose fields are the layout's options (a training stage's ``[layout]``
    table, or a model folder's ``model_index.json`` entry).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()  # other stage.kind names of this layout
    # The layout whose temporal weights sample this one when a model folder has none of its own
    # ("first_frame": the U-Net's own, the image-to-video model F); None: it needs its own weights.
    fallback: ClassVar[str | None] = "first_frame"
    has_image: ClassVar[bool] = True  # False: no known frames (the conditioning channels stay zero)

    # Noise augmentation of the known frames in training: t ~ U{0..noise_aug_max}; 0 = none.
    noise_aug_max: int = 0

    # Where the known frames are -------------------------------------------------------------------------
    def positions(self, num_frames: int) -> list[int]:
        """Time positions of the known frames in a clip of `num_frames` (ascending)."""
        raise NotImplementedError

    def fixed_frames(self) -> int | None:
        """The one clip length this layout makes, or None when it takes any (>= 2)."""
        return None

    def check_frames(self, num_frames: int) -> None:
        """Raise a UserError when this layout cannot make clips of `num_frames` frames."""
        if num_frames < 2:
            raise UserError(f"the {self.name} layout makes clips of at least 2 frames, got {num_frames}")

    def known_frames(self, clip: torch.Tensor) -> torch.Tensor:
        """The known frames (B, C, K, h, w) of a clean clip (B, C, T, h, w), by a strided slice where possible
        (no index tensor: nothing copied from the host in a step a CUDA graph records)."""
        positions = self.positions(clip.shape[2])
        if not positions:
            return clip[:, :, :0]
        strided = positions_slice(positions)
        return clip[:, :, strided if strided is not None else positions]

    def condition(self, known: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(conditioning latents, mask): `known` (B, C, K, h, w) placed at `positions(num_frames)`."""
        return place_frames(known, num_frames, self.positions(num_frames))

    def augment(self, known: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
                alphas_cumprod: torch.Tensor) -> torch.Tensor:
        """The known frames noised to level `t` (one per sample), as the model saw them in training."""
        return add_noise(known, noise, t, alphas_cumprod)

    # Training -------------------------------------------------------------------------------------------
    def training_draws(self, x0: torch.Tensor, randint: Randint, randn: Randn) -> dict[str, torch.Tensor]:
        """This step's random draws for the conditioning input: the noise augmentation, if any."""
        if not self.noise_aug_max:
            return {}
        k = len(self.positions(x0.shape[2]))
        return {"t_aug": randint(0, self.noise_aug_max + 1),
                "aug_noise": randn((*x0.shape[:2], k, *x0.shape[3:]))}

    def training_input(self, x0: torch.Tensor, xt: torch.Tensor, drawn: dict,
                       alphas_cumprod: torch.Tensor) -> torch.Tensor:
        """The U-Net input for noisy latents `xt` of the clean clip `x0`; `drawn` holds `drop_image` (samples
        whose condition is dropped) and `training_draws`."""
        known = self.known_frames(x0)
        if "aug_noise" in drawn:
            known = self.augment(known, drawn["aug_noise"], drawn["t_aug"], alphas_cumprod)
        cond, mask = self.condition(known, x0.shape[2])
        cond, mask = apply_image_dropout(cond, mask, drawn["drop_image"])
        return unet_input(xt, cond, mask)

    # Sampling -------------------------------------------------------------------------------------------
    def guidance(self, w_img: float, w_txt: float) -> Guidance:
        """Two-condition guidance where frames are known; text-only guidance otherwise."""
        return TwoConditionGuidance(w_img, w_txt) if self.has_image else ClassifierFreeGuidance(w_txt)

    def options(self) -> dict:
        return asdict(self)

    def check_options(self) -> None:
        """Raise a UserError for option values this layout cannot use."""
        if self.noise_aug_max < 0:
            raise UserError(f"{self.name} layout: noise_aug_max must be >= 0, got {self.noise_aug_max}")
