"""The interface every sampler follows (the registry that `--sampler NAME` chooses from is `samplers.py`).

A sampler walks a descending grid of training timesteps (``self.timesteps``) from pure noise to the clean
latents. Each sampler is a thin class over pure step functions (``ddim_step``, ``dpmpp_2m_step``,
``euler_step``): the class only holds the grid and, for multistep solvers, the previous model outputs.

    sampler = make_sampler("dpmpp-2m", schedule, num_inference_steps=10)
    x0 = sampler.sample(denoise_fn, x_T)            # denoise_fn(x_t, t) -> model output (eps or v)

Every sampler works in the variance-preserving parameterisation the U-Net is trained in (inputs x_t =
sqrt(a) x0 + sqrt(1 - a) eps, no input scaling), so the same denoiser serves all of them, and every sampler
accepts zero-terminal-SNR schedules (alpha_bar = 0 at t = T): none divides by alpha_bar_T.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from ._coefficients import TimestepLike
from .schedules import NoiseSchedule
from .timesteps import ddim_timesteps

__all__ = ["DenoiseFn", "Sampler", "StepCallback", "draw_noise"]

DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


def draw_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, drawn on the generator's device, then moved to like's."""
    draw_device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=draw_device, dtype=like.dtype).to(like.device)


class Sampler:
    """Base class: the timestep grid and the sampling loop. Subclasses set `name` and implement `update`.

    ``step(model_output, t, x_t, generator)`` moves ``x_t`` from grid timestep ``t`` to the next one (the clean
    end after the last, whose alpha_bar is ``final_alpha_cumprod``); it calls the subclass's ``update`` with
    both timesteps. Multistep samplers keep what they need of earlier steps; `reset` clears it and `sample`
    calls it first, so one sampler object can run many chains. The grid is ``ddim_timesteps`` (``spacing``:
    trailing, leading or linspace).
    """

    name: ClassVar[str] = ""
    init_noise_sigma = 1.0  # x_T = noise * init_noise_sigma (always 1 in the variance-preserving form)
    final_alpha_cumprod = 1.0  # the last step goes to the clean sample

    def __init__(self, schedule: NoiseSchedule, num_inference_steps: int, spacing: str = "trailing") -> None:
        self.schedule = schedule
        self.num_inference_steps = int(num_inference_steps)
        self.spacing = spacing
        self.timesteps = ddim_timesteps(num_inference_steps, schedule.num_train_timesteps, spacing)
        self.alphas_cumprod = schedule.alphas_cumprod
        self._position = {int(t): i for i, t in enumerate(self.timesteps.tolist())}

    def __len__(self) -> int:
        return len(self.timesteps)

    # Grid ------------------------------------------------------------------------------------------------
    def index_of(self, t: TimestepLike) -> int:
        key = int(t.item() if isinstance(t, torch.Tensor) else t)
        if key not in self._position:
            raise ValueError(f"timestep {key} is not in this sampler's grid of {len(self.timesteps)} steps")
        return self._position[key]

    def prev_timestep(self, t: TimestepLike) -> int:
        """The timestep after ``t`` in this sampler's grid, or -1 (the clean end) after the last one."""
        i = self.index_of(t)
        return int(self.timesteps[i + 1]) if i + 1 < len(self.timesteps) else -1

    # Stepping ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget earlier steps (multistep samplers); called at the start of `sample`."""

    def step(
        self,
        model_output: torch.Tensor,
        t: TimestepLike,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One update from ``t`` (an entry of ``self.timesteps``) to the next timestep of the grid."""
        t = int(t.item() if isinstance(t, torch.Tensor) else t)
        return self.update(model_output, t, self.prev_timestep(t), x_t, generator)

    def update(self, model_output: torch.Tensor, t: int, prev_t: int, x_t: torch.Tensor,
               generator: torch.Generator | None) -> torch.Tensor:
        """x at ``prev_t`` (-1: the clean end) from x at ``t`` and the model's output there."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self,
        denoise_fn: DenoiseFn,
        x_T: torch.Tensor,
        callback: StepCallback | None = None,
        progress: bool = False,
        generator: torch.Generator | None = None,
        desc: str | None = None,
    ) -> torch.Tensor:
        """Run the whole chain from ``x_T`` and return the final x0 estimate (latents).

        ``denoise_fn(x_t, t)`` gets a 0-dim LongTensor ``t`` on ``x_T``'s device and returns the model
        output (epsilon or v, per the schedule, guidance already applied). ``callback(i, t, x)`` is called
        after step ``i`` with the updated latents. ``generator`` draws the noise of stochastic samplers.
        ``desc`` labels the progress bar (default: the sampler's name).
        """
        self.reset()
        x = x_T * self.init_noise_sigma
        steps = self.timesteps.tolist()
        iterator = steps
        if progress:
            from tqdm.auto import tqdm

            label = f"{desc} ({self.name})" if desc else (self.name or type(self).__name__)
            iterator = tqdm(steps, desc=label, total=len(steps))
        for i, t in enumerate(iterator):
            t_tensor = torch.tensor(t, dtype=torch.long, device=x.device)
            model_output = denoise_fn(x, t_tensor)
            x = self.step(model_output, t, x, generator=generator)
            if callback is not None:
                callback(i, t_tensor, x)
        return x
