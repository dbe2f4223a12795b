import pytest
import torch
from diffusers import DDIMScheduler

from emu_video.diffusion import (
    NoiseSchedule,
    add_noise,
    eps_to_v,
    eps_to_x0,
    predict_x0_and_eps,
    training_target,
    v_to_eps,
    v_to_x0,
    velocity,
)

SHAPES = [(3, 4, 5, 6, 7), (3, 4, 6, 6)]  # (B,C,T,H,W) video latents and (B,C,H,W) images


def _data(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(shape, generator=g, dtype=dtype)
    noise = torch.randn(shape, generator=g, dtype=dtype)
    t = torch.tensor([0, 517, 999][: shape[0]], dtype=torch.long)
    return x0, noise, t


def _coef(schedule, t, ndim):
    a = schedule.alphas_cumprod[t].reshape(-1, *([1] * (ndim - 1)))
    return a.sqrt(), (1 - a).sqrt()


@pytest.mark.parametrize("shape", SHAPES)
def test_add_noise_and_velocity_closed_form(schedule, shape):
    x0, noise, t = _data(shape)
    sa, s1 = _coef(schedule, t, len(shape))
    ac = schedule.alphas_cumprod
    torch.testing.assert_close(add_noise(x0, noise, t, ac), sa * x0 + s1 * noise, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(velocity(x0, noise, t, ac), sa * noise - s1 * x0, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("zero_snr", [False, True])
def test_add_noise_and_velocity_match_diffusers(shape, zero_snr):
    s = NoiseSchedule(zero_terminal_snr=zero_snr, prediction_type="v_prediction")
    ref = DDIMScheduler(**s.to_diffusers_config())
    x0, noise, t = _data(shape, dtype=torch.float32)
    torch.testing.assert_close(add_noise(x0, noise, t, s.alphas_cumprod), ref.add_noise(x0, noise, t),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(velocity(x0, noise, t, s.alphas_cumprod), ref.get_velocity(x0, noise, t),
                               rtol=1e-5, atol=1e-6)
    # dtype follows the data
    assert add_noise(x0, noise, t, s.alphas_cumprod).dtype == torch.float32


def test_training_target(schedule):
    x0, noise, t = _data((3, 2, 4, 4))
    target = training_target(x0, noise, t, schedule)
    if schedule.prediction_type == "epsilon":
        assert torch.equal(target, noise)
    else:
        torch.testing.assert_close(target, velocity(x0, noise, t, schedule.alphas_cumprod))


@pytest.mark.parametrize("shape", SHAPES)
def test_v_prediction_recovers_x0_and_eps(shape):
    s = NoiseSchedule.stage_512()
    ac = s.alphas_cumprod
    x0, noise, t = _data(shape)  # includes t = 999, where alpha_bar = 0
    x_t = add_noise(x0, noise, t, ac)
    v = velocity(x0, noise, t, ac)
    px0, peps = predict_x0_and_eps(v, x_t, t, ac, "v_prediction")
    torch.testing.assert_close(px0, x0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(peps, noise, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v_to_x0(v, x_t, t, ac), x0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v_to_eps(v, x_t, t, ac), noise, rtol=1e-12, atol=1e-12)
    # closed form written out
    sa, s1 = _coef(s, t, len(shape))
    torch.testing.assert_close(px0, sa * x_t - s1 * v, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(peps, sa * v + s1 * x_t, rtol=1e-13, atol=1e-13)
    # at t = T with zero SNR: x_t is pure noise, x0 = -v
    assert torch.allclose(px0[2], -v[2])


@pytest.mark.parametrize("shape", SHAPES)
def test_epsilon_recovers_x0_and_conversions(shape):
    s = NoiseSchedule.stage_256()
    ac = s.alphas_cumprod
    x0, noise, t = _data(shape)
    x_t = add_noise(x0, noise, t, ac)
    px0, peps = predict_x0_and_eps(noise, x_t, t, ac, "epsilon")
    assert torch.equal(peps, noise)
    torch.testing.assert_close(px0, x0, rtol=1e-9, atol=1e-9)
    sa, s1 = _coef(s, t, len(shape))
    torch.testing.assert_close(px0, (x_t - s1 * noise) / sa, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(eps_to_x0(noise, x_t, t, ac), px0)
    v = velocity(x0, noise, t, ac)
    torch.testing.assert_close(eps_to_v(noise, x_t, t, ac), v, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(v_to_eps(v, x_t, t, ac), noise, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v_to_eps(eps_to_v(noise, x_t, t, ac), x_t, t, ac), noise, rtol=1e-9, atol=1e-9)


def test_scalar_timestep_broadcasts():
    s = NoiseSchedule.stage_512()
    ac = s.alphas_cumprod
    x0, noise, _ = _data((3, 2, 4, 5, 5))
    a = add_noise(x0, noise, torch.tensor(300), ac)
    b = add_noise(x0, noise, torch.full((3,), 300, dtype=torch.long), ac)
    c = add_noise(x0, noise, 300, ac)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_bad_inputs():
    ac = NoiseSchedule.stage_512().alphas_cumprod
    x0, noise, _ = _data((3, 2, 4, 4))
    with pytest.raises(ValueError, match="unknown prediction_type"):
        predict_x0_and_eps(x0, noise, torch.tensor([1, 2, 3]), ac, "sample")
    with pytest.raises(ValueError, match="timesteps"):
        add_noise(x0, noise, torch.tensor([1, 2]), ac)
    with pytest.raises(TypeError):
        add_noise(x0, noise, torch.tensor([1.0, 2.0, 3.0]), ac)
