"""Diffusion maths for Emu Video: schedules, parameterisations, loss, DDIM, guidance, condition dropout.

Small pure functions, one concern per module:

* :mod:`.schedules`        -- "quad" betas, zero-terminal-SNR rescale, :class:`NoiseSchedule` (+ presets)
* :mod:`.parameterization` -- forward noising and x0 / epsilon / v conversions
* :mod:`.loss`             -- masked MSE and uniform timestep sampling
* :mod:`.ddim`             -- DDIM timestep grids, the update step, :class:`DDIMSampler`
* :mod:`.guidance`         -- one- and two-condition classifier-free guidance, batching helpers
* :mod:`.dropout`          -- text / image / both condition dropout for training
"""

from .ddim import SPACINGS, DDIMSampler, ddim_step, ddim_timesteps
from .dropout import ConditionDropout, apply_image_dropout, apply_text_dropout
from .guidance import (
    GUIDANCE_ORDER,
    classifier_free_guidance,
    repeat_for_guidance,
    split_guidance,
    two_condition_guidance,
)
from .loss import diffusion_loss, sample_timesteps
from .parameterization import (
    add_noise,
    eps_to_v,
    eps_to_x0,
    predict_x0_and_eps,
    training_target,
    v_to_eps,
    v_to_x0,
    velocity,
)
from .schedules import (
    PREDICTION_TYPES,
    NoiseSchedule,
    alphas_cumprod_from_betas,
    quad_betas,
    rescale_zero_terminal_snr,
)

__all__ = [
    "GUIDANCE_ORDER",
    "PREDICTION_TYPES",
    "SPACINGS",
    "ConditionDropout",
    "DDIMSampler",
    "NoiseSchedule",
    "add_noise",
    "alphas_cumprod_from_betas",
    "apply_image_dropout",
    "apply_text_dropout",
    "classifier_free_guidance",
    "ddim_step",
    "ddim_timesteps",
    "diffusion_loss",
    "eps_to_v",
    "eps_to_x0",
    "predict_x0_and_eps",
    "quad_betas",
    "repeat_for_guidance",
    "rescale_zero_terminal_snr",
    "sample_timesteps",
    "split_guidance",
    "training_target",
    "two_condition_guidance",
    "v_to_eps",
    "v_to_x0",
    "velocity",
]
