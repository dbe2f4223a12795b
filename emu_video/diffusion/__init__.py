"""Diffusion maths for Emu Video: schedules, parameterisations, loss, samplers, guidance, layouts, dropout.

Small pure functions and small objects, one concern per module:

* :mod:`.schedules`        -- "quad" betas, zero-terminal-SNR rescale, :class:`NoiseSchedule` (+ presets)
* :mod:`.parameterization` -- forward noising and x0 / epsilon / v conversions
* :mod:`.loss`             -- masked MSE and uniform timestep sampling
* :mod:`.sampler`          -- the interface every sampler follows; :mod:`.samplers` -- their registry
* :mod:`.ddim`, :mod:`.dpm_solver`, :mod:`.euler` -- the samplers' pure step functions and classes
* :mod:`.guidance`         -- no / one-condition / two-condition classifier-free guidance objects
* :mod:`.conditioning`     -- known frames placed in a zero video plus a mask
* :mod:`.layouts`          -- conditioning layouts (first frame, interpolation, extension, direct, keyframes)
* :mod:`.dropout`          -- text / image / both condition dropout for training
"""

from .ddim import DDIMSampler, ddim_step
from .dropout import ConditionDropout, apply_image_dropout, apply_text_dropout
from .guidance import (
    GUIDANCE_ORDER,
    ClassifierFreeGuidance,
    Guidance,
    NoGuidance,
    TwoConditionGuidance,
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
from .sampler import Sampler
from .schedules import (
    PREDICTION_TYPES,
    NoiseSchedule,
    alphas_cumprod_from_betas,
    quad_betas,
    rescale_zero_terminal_snr,
)
from .timesteps import SPACINGS, ddim_timesteps

__all__ = [
    "GUIDANCE_ORDER",
    "PREDICTION_TYPES",
    "SPACINGS",
    "ClassifierFreeGuidance",
    "ConditionDropout",
    "DDIMSampler",
    "Guidance",
    "NoGuidance",
    "NoiseSchedule",
    "Sampler",
    "TwoConditionGuidance",
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
