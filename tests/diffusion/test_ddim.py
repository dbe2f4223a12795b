import pytest
import torch
from diffusers import DDIMScheduler

from emu_video.diffusion import (
    DDIMSampler,
    NoiseSchedule,
    add_noise,
    ddim_step,
    ddim_timesteps,
    predict_x0_and_eps,
    velocity,
)


def fake_model(prediction_scale: float = 1.0):
    """A deterministic stand-in for a denoiser: a smooth, non-linear function of x_t and t."""

    def fn(x: torch.Tensor, t) -> torch.Tensor:
        tf = float(t)
        return prediction_scale * (0.6 * x * torch.cos(torch.tensor(tf / 311.0, dtype=x.dtype))
                                   + 0.3 * torch.sin(2.0 * x + tf / 97.0))

    return fn


STEP_COUNTS = [1, 2, 7, 25, 50, 250, 1000]
SPACINGS = ["trailing", "leading", "linspace"]


def _ref_timesteps(n, spacing, big_n=1000):
    ref = DDIMScheduler(num_train_timesteps=big_n, timestep_spacing=spacing, steps_offset=0)
    ref.set_timesteps(n)
    return ref.timesteps


# --------------------------------------------------------------------------- timesteps
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("n", STEP_COUNTS)
def test_timesteps_equal_diffusers(spacing, n):
    ours = ddim_timesteps(n, 1000, spacing)
    assert ours.dtype == torch.long
    assert torch.equal(ours, _ref_timesteps(n, spacing))


@pytest.mark.parametrize("spacing", SPACINGS)
def test_timesteps_all_counts(spacing):
    """Every n in 1..1000: exactly n distinct, descending, valid timesteps equal to diffusers' first n."""
    ref = DDIMScheduler(timestep_spacing=spacing, steps_offset=0)
    for n in range(1, 1001):
        ours = ddim_timesteps(n, 1000, spacing)
        ref.set_timesteps(n)
        assert ours.shape == (n,)
        assert torch.equal(ours, ref.timesteps[:n]), n
        assert bool((ours[1:] < ours[:-1]).all()) and int(ours.min()) >= 0 and int(ours.max()) <= 999
        if spacing == "trailing":
            assert int(ours[0]) == 999


def test_timesteps_other_train_lengths():
    for big_n in (10, 37, 1000):
        for spacing in SPACINGS:
            for n in range(1, big_n + 1, max(1, big_n // 9)):
                assert torch.equal(ddim_timesteps(n, big_n, spacing), _ref_timesteps(n, spacing, big_n)[:n])


@pytest.mark.parametrize("bad", [0, -3, 1001, 2.5])
def test_timesteps_reject_bad_counts(bad):
    with pytest.raises(ValueError, match="num_inference_steps"):
        ddim_timesteps(bad, 1000)


def test_timesteps_reject_bad_spacing():
    with pytest.raises(ValueError, match="spacing"):
        ddim_timesteps(10, 1000, "uniform")


# --------------------------------------------------------------------------- one step
@pytest.mark.parametrize("prediction_type,zero_snr", [("epsilon", False), ("v_prediction", False), ("v_prediction", True)])
def test_step_closed_form(prediction_type, zero_snr):
    s = NoiseSchedule(zero_terminal_snr=zero_snr, prediction_type=prediction_type)
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, 5, generator=g, dtype=torch.float64)
    out = torch.randn(x.shape, generator=g, dtype=torch.float64)
    t, prev = 979, 959
    x0, eps = predict_x0_and_eps(out, x, t, ac, prediction_type)
    a, ap = ac[t], ac[prev]
    expected = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
    torch.testing.assert_close(ddim_step(out, t, prev, x, ac, prediction_type), expected, rtol=1e-13, atol=1e-13)
    # eta > 0: noise is torch.randn with the generator, scaled by sigma
    eta = 0.7
    var = (1 - ap) / (1 - a) * (1 - a / ap)
    sigma = eta * var.sqrt()
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = ap.sqrt() * x0 + (1 - ap - sigma**2).sqrt() * eps + sigma * z
    got = ddim_step(out, t, prev, x, ac, prediction_type, eta=eta, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-13)


def test_final_step_returns_x0_estimate():
    s = NoiseSchedule.stage_512()
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 3, 6, 6, generator=g, dtype=torch.float64)
    out = torch.randn(x.shape, generator=g, dtype=torch.float64)
    x0, _ = predict_x0_and_eps(out, x, 3, ac, "v_prediction")
    torch.testing.assert_close(ddim_step(out, 3, -1, x, ac, "v_prediction"), x0, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(ddim_step(out, 3, -1, x, ac, "v_prediction", eta=1.0, generator=g), x0,
                               rtol=1e-14, atol=1e-14)
    # set_alpha_to_one=False equivalent
    got = ddim_step(out, 3, -1, x, ac, "v_prediction", final_alpha_cumprod=float(ac[0]))
    expected = ac[0].sqrt() * x0 + (1 - ac[0]).sqrt() * predict_x0_and_eps(out, x, 3, ac, "v_prediction")[1]
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("preset", ["stage_256", "stage_512"])
def test_oracle_model_retraces_the_forward_process(preset):
    """Fed the true eps / v of a fixed (x0, noise), deterministic DDIM lands on q(x_prev | x0, noise)."""
    s = getattr(NoiseSchedule, preset)()
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(2, 4, 3, 6, 6, generator=g, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    oracle = (lambda x, t: noise) if s.prediction_type == "epsilon" else (lambda x, t: velocity(x0, noise, t, ac))
    sampler = DDIMSampler(s, 25)
    seen = []
    x_T = add_noise(x0, noise, int(sampler.timesteps[0]), ac)
    result = sampler.sample(oracle, x_T, callback=lambda i, t, x: seen.append(x))
    for i, x in enumerate(seen[:-1]):
        torch.testing.assert_close(x, add_noise(x0, noise, int(sampler.timesteps[i + 1]), ac), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(result, x0, rtol=1e-9, atol=1e-9)


def test_per_sample_timesteps_in_step():
    s = NoiseSchedule.stage_512()
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64)
    out = torch.randn(x.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([999, 500, 10])
    prev = torch.tensor([959, 460, -1])
    got = ddim_step(out, t, prev, x, ac, "v_prediction")
    for b in range(3):
        ref = ddim_step(out[b:b + 1], int(t[b]), int(prev[b]), x[b:b + 1], ac, "v_prediction")
        torch.testing.assert_close(got[b:b + 1], ref)


# --------------------------------------------------------------------------- trajectories vs diffusers
def _run_diffusers(ref, fn, x_T, eta=0.0, generator=None):
    xs, x0s = [], []
    x = x_T
    for t in ref.timesteps:
        out = ref.step(fn(x, t), t, x, eta=eta, generator=generator)
        x = out.prev_sample
        xs.append(x)
        x0s.append(out.pred_original_sample)
    return xs, x0s


CASES = [
    # (zero_snr, prediction_type, spacing, steps)
    (True, "v_prediction", "trailing", 50),
    (True, "v_prediction", "trailing", 250),
    (False, "epsilon", "trailing", 25),
    (False, "epsilon", "leading", 50),
    (False, "epsilon", "leading", 7),
    (False, "v_prediction", "trailing", 20),
]


@pytest.mark.parametrize("zero_snr,prediction_type,spacing,steps", CASES)
@pytest.mark.parametrize("inject_alphas", [False, True])
def test_trajectory_matches_diffusers(zero_snr, prediction_type, spacing, steps, inject_alphas):
    s = NoiseSchedule(zero_terminal_snr=zero_snr, prediction_type=prediction_type)
    ref = DDIMScheduler(**s.to_diffusers_config(timestep_spacing=spacing))
    ref.set_timesteps(steps)
    if inject_alphas:
        # same alpha_bar in both: isolates the step maths, which must then agree to float64 round-off
        ref.alphas_cumprod = s.alphas_cumprod
        tol = dict(rtol=1e-10, atol=1e-10)
    else:
        # diffusers' own float32 alpha_bar
        tol = dict(rtol=1e-4, atol=1e-4)
    fn = fake_model()
    x_T = torch.randn(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref_xs, ref_x0s = _run_diffusers(ref, fn, x_T)

    sampler = DDIMSampler(s, steps, spacing=spacing)
    assert torch.equal(sampler.timesteps, ref.timesteps)
    ours = []
    result = sampler.sample(fn, x_T, callback=lambda i, t, x: ours.append((i, int(t), x)))
    assert [i for i, _, _ in ours] == list(range(steps))
    assert [t for _, t, _ in ours] == ref.timesteps.tolist()
    x = x_T
    for i, t in enumerate(sampler.timesteps):
        torch.testing.assert_close(ours[i][2], ref_xs[i], **tol)
        x0, _ = predict_x0_and_eps(fn(x, t), x, t, s.alphas_cumprod, prediction_type)
        torch.testing.assert_close(x0, ref_x0s[i], **tol)
        x = ours[i][2]
    torch.testing.assert_close(result, ref_xs[-1], **tol)


@pytest.mark.parametrize("eta", [0.3, 0.8])
def test_stochastic_trajectory_matches_diffusers(eta):
    s = NoiseSchedule.stage_512()
    ref = DDIMScheduler(**s.to_diffusers_config())
    ref.set_timesteps(25)
    ref.alphas_cumprod = s.alphas_cumprod
    fn = fake_model()
    x_T = torch.randn(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref_xs, _ = _run_diffusers(ref, fn, x_T, eta=eta, generator=torch.Generator().manual_seed(123))

    sampler = DDIMSampler(s, 25, eta=eta)
    ours = []
    sampler.sample(fn, x_T, callback=lambda i, t, x: ours.append(x), generator=torch.Generator().manual_seed(123))
    for a, b in zip(ours, ref_xs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    # and it really is stochastic
    other = sampler.sample(fn, x_T, generator=torch.Generator().manual_seed(7))
    assert not torch.allclose(other, ours[-1])


def test_float32_trajectory_matches_diffusers():
    s = NoiseSchedule.stage_512()
    ref = DDIMScheduler(**s.to_diffusers_config())
    ref.set_timesteps(50)
    fn = fake_model()
    x_T = torch.randn(1, 8, 2, 8, 8, generator=torch.Generator().manual_seed(9))
    ref_xs, _ = _run_diffusers(ref, fn, x_T)
    result = DDIMSampler(s, 50).sample(fn, x_T)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, ref_xs[-1], rtol=1e-4, atol=1e-4)


def test_non_divisible_trailing_steps_use_the_grid():
    """With 7 trailing steps the previous timestep is the next grid entry (diffusers would use t - 142)."""
    s = NoiseSchedule.stage_512()
    sampler = DDIMSampler(s, 7)
    assert sampler.timesteps.tolist() == [999, 856, 713, 570, 428, 285, 142]
    assert [sampler.prev_timestep(t) for t in sampler.timesteps] == [856, 713, 570, 428, 285, 142, -1]
    fn = fake_model()
    x = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = ddim_step(fn(x, 713), 713, 570, x, s.alphas_cumprod, "v_prediction")
    torch.testing.assert_close(sampler.step(fn(x, 713), torch.tensor(713), x), expected, rtol=0, atol=0)


def test_sampler_misc():
    s = NoiseSchedule.stage_512()
    sampler = DDIMSampler(s, 4)
    assert sampler.init_noise_sigma == 1.0 and len(sampler) == 4
    with pytest.raises(ValueError, match="not in this sampler's grid"):
        sampler.step(torch.zeros(1, 2), 998, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="eta"):
        DDIMSampler(s, 4, eta=-0.1)
    seen_t = []

    def fn(x, t):
        assert t.dtype == torch.long and t.ndim == 0
        seen_t.append(int(t))
        return torch.zeros_like(x)

    sampler.sample(fn, torch.randn(1, 2, 3, 3), progress=True)
    assert seen_t == sampler.timesteps.tolist()


def test_eta_one_at_zero_terminal_snr_is_finite():
    """eta = 1 from t = T with alpha_bar_T = 0: sigma^2 = 1 - alpha_bar_prev, the eps direction vanishes.

    (diffusers returns NaN here: its sqrt(1 - a' - sigma^2) goes slightly negative by round-off.)
    """
    s = NoiseSchedule.stage_512()
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    out = torch.randn(x.shape, generator=g, dtype=torch.float64)
    got = ddim_step(out, 999, 959, x, ac, "v_prediction", eta=1.0, generator=torch.Generator().manual_seed(1))
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x0, _ = predict_x0_and_eps(out, x, 999, ac, "v_prediction")
    expected = ac[959].sqrt() * x0 + (1 - ac[959]).sqrt() * z
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    result = DDIMSampler(s, 10, eta=1.0).sample(lambda x, t: 0.1 * x, x, generator=g)
    assert torch.isfinite(result).all()
