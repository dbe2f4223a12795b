import math

import pytest
import torch
from diffusers import DDIMScheduler
from diffusers.schedulers.scheduling_ddim import (
    rescale_zero_terminal_snr as ref_rescale,
)

from emu_video.diffusion import NoiseSchedule, quad_betas, rescale_zero_terminal_snr
from emu_video.diffusion.schedules import alphas_cumprod_from_betas


def _diffusers(zero_snr: bool, prediction_type: str = "v_prediction") -> DDIMScheduler:
    return DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        rescale_betas_zero_snr=zero_snr,
        prediction_type=prediction_type,
        clip_sample=False,
    )


def test_quad_betas_closed_form_and_dtype():
    b = quad_betas()
    assert b.dtype == torch.float64 and b.shape == (1000,)
    assert b[0].item() == pytest.approx(8.5e-4, rel=1e-14)
    assert b[-1].item() == pytest.approx(1.2e-2, rel=1e-14)
    # sqrt(beta) is linear in t
    i = 417
    expected = (math.sqrt(8.5e-4) + i / 999 * (math.sqrt(1.2e-2) - math.sqrt(8.5e-4))) ** 2
    assert b[i].item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("zero_snr", [False, True])
def test_alphas_cumprod_match_diffusers(zero_snr):
    ours = NoiseSchedule(zero_terminal_snr=zero_snr, prediction_type="v_prediction")
    ref = _diffusers(zero_snr)
    # diffusers works in float32: agree to float32 round-off
    torch.testing.assert_close(ours.alphas_cumprod, ref.alphas_cumprod.double(), rtol=0, atol=1e-6)
    # zero-SNR betas are ratios of alpha_bar, so diffusers' float32 loses more digits there
    # (the float64 comparison below is the tight one)
    atol = 1e-5 if zero_snr else 1e-8
    torch.testing.assert_close(ours.betas, ref.betas.double(), rtol=0, atol=atol)


def test_rescale_matches_reference_in_float64():
    betas = quad_betas()
    torch.testing.assert_close(rescale_zero_terminal_snr(betas), ref_rescale(betas.clone()), rtol=0, atol=1e-13)


def test_zero_snr_properties():
    base = NoiseSchedule.stage_256()
    zsnr = NoiseSchedule.stage_512()
    ab = zsnr.alphas_cumprod
    assert ab[-1].item() == 0.0
    assert zsnr.snr[-1].item() == 0.0
    assert zsnr.betas[-1].item() == pytest.approx(1.0, abs=1e-15)
    # the first SNR (and alpha_bar) is unchanged by the rescale
    assert zsnr.snr[0].item() == pytest.approx(base.snr[0].item(), rel=1e-12)
    assert ab[0].item() == pytest.approx(base.alphas_cumprod[0].item(), rel=1e-14)
    # monotone decreasing, in [0, 1]
    assert bool((ab[1:] < ab[:-1]).all()) and bool((ab >= 0).all()) and bool((ab <= 1).all())
    # sqrt(alpha_bar) is an affine map of the original sqrt(alpha_bar)
    s0 = base.alphas_cumprod.sqrt()
    s1 = ab.sqrt()
    expected = (s0 - s0[-1]) * s0[0] / (s0[0] - s0[-1])
    torch.testing.assert_close(s1, expected, rtol=0, atol=1e-13)
    # the base schedule keeps residual signal at t = T
    assert base.alphas_cumprod[-1].item() > 1e-3


def test_alphas_cumprod_from_betas():
    betas = torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64)
    torch.testing.assert_close(alphas_cumprod_from_betas(betas), torch.tensor([0.9, 0.72, 0.36], dtype=torch.float64))


def test_epsilon_with_zero_snr_is_refused():
    with pytest.raises(ValueError, match="epsilon.*zero_terminal_snr.*divides by zero"):
        NoiseSchedule(zero_terminal_snr=True, prediction_type="epsilon")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prediction_type": "sample"},
        {"prediction_type": "eps"},
        {"num_train_timesteps": 0},
        {"num_train_timesteps": 10.0},
        {"beta_start": 0.0},
        {"beta_end": 1.5},
        {"beta_start": 0.02, "beta_end": 0.01},
        {"zero_terminal_snr": 1},
    ],
)
def test_invalid_configs(kwargs):
    with pytest.raises(ValueError):
        NoiseSchedule(**kwargs)


def test_presets():
    s256, s512 = NoiseSchedule.stage_256(), NoiseSchedule.stage_512()
    assert (s256.zero_terminal_snr, s256.prediction_type) == (False, "epsilon")
    assert (s512.zero_terminal_snr, s512.prediction_type) == (True, "v_prediction")
    for s in (s256, s512):
        assert (s.num_train_timesteps, s.beta_start, s.beta_end) == (1000, 8.5e-4, 1.2e-2)


def test_dict_round_trip_and_frozen():
    s = NoiseSchedule.stage_512()
    d = s.to_dict()
    assert d == {
        "num_train_timesteps": 1000,
        "beta_start": 8.5e-4,
        "beta_end": 1.2e-2,
        "zero_terminal_snr": True,
        "prediction_type": "v_prediction",
    }
    assert NoiseSchedule.from_dict(d) == s
    with pytest.raises(ValueError, match="unknown"):
        NoiseSchedule.from_dict({**d, "bogus": 1})
    with pytest.raises(Exception):
        s.prediction_type = "epsilon"  # frozen
    # returned tensors are copies: mutating them does not corrupt the schedule
    ab = s.alphas_cumprod
    ab.zero_()
    assert s.alphas_cumprod[0].item() > 0.99


@pytest.mark.parametrize("preset", ["stage_256", "stage_512"])
def test_to_diffusers_config_builds_equivalent_scheduler(preset):
    s = getattr(NoiseSchedule, preset)()
    ref = DDIMScheduler(**s.to_diffusers_config())
    assert ref.config.prediction_type == s.prediction_type
    assert ref.config.timestep_spacing == "trailing"
    assert ref.config.clip_sample is False and ref.config.set_alpha_to_one is True
    torch.testing.assert_close(s.alphas_cumprod, ref.alphas_cumprod.double(), rtol=0, atol=1e-6)
