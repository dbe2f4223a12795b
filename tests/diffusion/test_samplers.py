"""DPM-Solver++(2M), Euler and Euler-ancestral against diffusers, step by step, plus the sampler registry.

How the comparison with diffusers works
---------------------------------------
Both sides get the same model output at every step: a fixed smooth function of *our* VP state and t.
diffusers' Euler schedulers keep their sample in sigma space (z = x * sqrt(s^2 + 1), s = sqrt((1 - a) / a));
we feed them z and compare our x with z / sqrt(s'^2 + 1) after each step. DPM-Solver works in VP form already.

Two modes:

* "exact": diffusers' step maths on our float64 coefficients. After ``set_timesteps`` we replace diffusers'
  float32 ``sigmas`` with float64 ones computed from our alpha_bar at the same timesteps (plus the final 0),
  and, for the duration of the run, give the scheduler module a ``torch`` whose ``float32`` is ``float64``:
  every ``step`` does ``sample = sample.to(torch.float32)`` (a *down*cast for float64 input), which would
  otherwise cap agreement at float32 precision. Then the two agree to float64 round-off, and we check
  ``rtol = atol = 1e-10``. The largest differences seen are ~4e-13 (epsilon prediction: x0 = (x - sigma eps)
  / alpha amplifies round-off by 1 / alpha_T ~ 15, accumulated over 50 steps) and ~2e-12 (clamped zero SNR
  with Euler: diffusers' sample there is 4096 times the VP one, so its round-off is 4096 times larger).
* "shipped": diffusers exactly as configured (its own float32 alpha_bar and float32 state) against our
  float64 sampler: ``rtol = atol = 1e-3``. Seen: <= 1e-4 without and <= 5e-4 with the zero-SNR clamp (the
  first sigma-space sample is ~4096 x_T, and float32 round-off of that is ~2.4e-4).

Zero terminal SNR: diffusers clamps alpha_bar[T - 1] to 2**-24 (``rescale_betas_zero_snr=True``); "exact" runs
give our sampler the same clamped alpha_bar. Our own schedule has the true zero; see
``test_true_zero_terminal_snr_is_finite_and_close_to_the_clamped_run`` for how close the two are.
"""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)
from diffusers.schedulers import (
    scheduling_dpmsolver_multistep,
    scheduling_euler_ancestral_discrete,
    scheduling_euler_discrete,
)

from emu_video.diffusion import (
    DDIMSampler,
    NoiseSchedule,
    add_noise,
    ddim_timesteps,
    predict_x0_and_eps,
    velocity,
)
from emu_video.diffusion.dpm_solver import DPMSolverMultistepSampler, dpmpp_2m_step
from emu_video.diffusion.euler import (
    EulerAncestralSampler,
    EulerSampler,
    euler_ancestral_step,
    euler_step,
)
from emu_video.diffusion.samplers import DEFAULT_SAMPLER, SAMPLERS, make_sampler

CLAMP = 2.0**-24  # diffusers' alpha_bar[T - 1] with rescale_betas_zero_snr=True
EXACT = {"rtol": 1e-10, "atol": 1e-10}
SHIPPED = {"rtol": 1e-3, "atol": 1e-3}
STEP_COUNTS = [1, 2, 5, 10, 25, 50]
# diffusers' DPM-Solver calls np.array(tensor), which numpy 2 flags; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
NEW_SAMPLERS = ["dpmpp-2m", "euler", "euler-ancestral"]
# (prediction_type, zero_terminal_snr); zero SNR is compared with diffusers' clamped alpha_bar
CASES = [("epsilon", False), ("v_prediction", False), ("v_prediction", True)]


def fake_model(x: torch.Tensor, t) -> torch.Tensor:
    """A deterministic stand-in for a denoiser: a smooth, non-linear function of x_t and t."""
    tf = float(t)
    return 0.6 * x * math.cos(tf / 311.0) + 0.3 * torch.sin(2.0 * x + tf / 97.0)


def _x_T(seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _clamped(ac: torch.Tensor) -> torch.Tensor:
    ac = ac.clone()
    ac[-1] = CLAMP
    return ac


class _Float64Torch:
    """``torch`` with ``float32`` meaning ``float64``: installed as a diffusers scheduler module's ``torch``."""

    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


def _diffusers(kind: str, s: NoiseSchedule):
    common = {
        "num_train_timesteps": s.num_train_timesteps,
        "beta_start": s.beta_start,
        "beta_end": s.beta_end,
        "beta_schedule": "scaled_linear",  # our "quad" betas
        "prediction_type": s.prediction_type,
        "timestep_spacing": "trailing",
        "rescale_betas_zero_snr": s.zero_terminal_snr,
    }
    if kind == "dpmpp-2m":
        ref = DPMSolverMultistepScheduler(
            algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero", **common
        )
        return ref, scheduling_dpmsolver_multistep
    if kind == "euler":
        return EulerDiscreteScheduler(final_sigmas_type="zero", **common), scheduling_euler_discrete
    if kind == "euler-ancestral":
        return EulerAncestralDiscreteScheduler(**common), scheduling_euler_ancestral_discrete
    raise AssertionError(kind)


def _run_both(kind, s, steps, exact, monkeypatch, seed=11):
    """Step our sampler and diffusers' scheduler side by side; return per-step (ours, theirs as VP, x0s)."""
    ref, module = _diffusers(kind, s)
    ref.set_timesteps(steps)
    ours = make_sampler(kind, s, steps)
    if s.zero_terminal_snr:
        assert float(ref.alphas_cumprod[-1]) == CLAMP
        ours.alphas_cumprod = _clamped(s.alphas_cumprod)  # diffusers' clamp, to compare step by step
    ac = ours.alphas_cumprod
    # the same trailing grid
    assert torch.equal(ref.timesteps, ref.timesteps.round())
    assert torch.equal(ours.timesteps, ref.timesteps.long())
    assert torch.equal(ours.timesteps, ddim_timesteps(steps, 1000, "trailing"))
    sigma_ve = ((1 - ac) / ac).sqrt()[ours.timesteps]
    expected_sigmas = torch.cat([sigma_ve, sigma_ve.new_zeros(1)])
    # diffusers' own sigmas (float32 cumprod, so ~1e-6 relative off near t = 0) agree with ours
    torch.testing.assert_close(ref.sigmas.double(), expected_sigmas, rtol=1e-5, atol=0)
    if exact:
        ref.sigmas = expected_sigmas
        monkeypatch.setattr(module, "torch", _Float64Torch())
    sigma_space = kind != "dpmpp-2m"

    x = _x_T()
    z = x * (expected_sigmas[0] ** 2 + 1).sqrt() if sigma_space else x.clone()
    g_ours, g_ref = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    ours.reset()
    out = []
    for i, t in enumerate(ref.timesteps):
        model_output = fake_model(x, t)
        if sigma_space:
            torch.testing.assert_close(ref.scale_model_input(z, t), x, **(EXACT if exact else SHIPPED))
        res = ref.step(model_output, t, z, generator=g_ref)
        z = res.prev_sample
        x0, _ = predict_x0_and_eps(model_output, x, int(t), ac, s.prediction_type)
        ref_x0 = getattr(res, "pred_original_sample", None)
        x = ours.step(model_output, t.long(), x, generator=g_ours)
        vp = z / (expected_sigmas[i + 1] ** 2 + 1).sqrt() if sigma_space else z
        out.append((x, vp, x0, ref_x0))
    monkeypatch.undo()
    return out


# --------------------------------------------------------------------------- step by step vs diffusers
@pytest.mark.parametrize("prediction_type,zero_snr", CASES)
@pytest.mark.parametrize("steps", STEP_COUNTS)
@pytest.mark.parametrize("kind", NEW_SAMPLERS)
def test_matches_diffusers_step_by_step_exact(kind, steps, prediction_type, zero_snr, monkeypatch):
    s = NoiseSchedule(zero_terminal_snr=zero_snr, prediction_type=prediction_type)
    for x, ref_x, x0, ref_x0 in _run_both(kind, s, steps, exact=True, monkeypatch=monkeypatch):
        assert x.dtype == torch.float64 and torch.isfinite(x).all()
        torch.testing.assert_close(x, ref_x, **EXACT)
        if ref_x0 is not None:  # diffusers' Euler x0 estimate (the same in sigma space and VP form)
            torch.testing.assert_close(x0, ref_x0, **EXACT)


@pytest.mark.parametrize("prediction_type,zero_snr", CASES)
@pytest.mark.parametrize("steps", [1, 5, 25])
@pytest.mark.parametrize("kind", NEW_SAMPLERS)
def test_matches_diffusers_as_shipped(kind, steps, prediction_type, zero_snr, monkeypatch):
    """diffusers untouched: float32 alpha_bar, sigmas and state, so only float32-level agreement."""
    s = NoiseSchedule(zero_terminal_snr=zero_snr, prediction_type=prediction_type)
    for x, ref_x, _, _ in _run_both(kind, s, steps, exact=False, monkeypatch=monkeypatch):
        torch.testing.assert_close(x, ref_x, **SHIPPED)


def test_dpm_solver_first_and_last_steps_are_first_order():
    """First and last steps are first order (= DDIM); the ones between are second order."""
    s = NoiseSchedule.stage_256()
    x = _x_T()
    for steps in (1, 2, 3, 20):
        sampler = DPMSolverMultistepSampler(s, steps)
        ddim = DDIMSampler(s, steps)
        xs, ys = [], []
        sampler.sample(fake_model, x, callback=lambda i, t, y, xs=xs: xs.append(y))
        # DDIM from the same states
        y = x
        for i, t in enumerate(sampler.timesteps.tolist()):
            ys.append(ddim.step(fake_model(y, t), t, y))
            y = xs[i]
        first_order = [i == 0 or i == steps - 1 for i in range(steps)]
        for i in range(steps):
            same = torch.allclose(xs[i], ys[i], rtol=1e-12, atol=1e-12)
            assert same == first_order[i], (steps, i)
    # with two steps the whole chain is DDIM
    torch.testing.assert_close(DPMSolverMultistepSampler(s, 2).sample(fake_model, x),
                               DDIMSampler(s, 2).sample(fake_model, x), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- closed forms of one step
def test_dpmpp_2m_step_closed_form():
    """The 2M update written with exp(-h) and D1 = (m0 - m1) / r0, as in the DPM-Solver++ paper."""
    s = NoiseSchedule(prediction_type="v_prediction")
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(1)
    x, x0, x0_last = (torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    u, t, p = 899, 799, 699

    def lam(k):
        return 0.5 * math.log(float(ac[k]) / (1 - float(ac[k])))

    alpha_t, sigma_t = float(ac[p]) ** 0.5, (1 - float(ac[p])) ** 0.5
    sigma_s = (1 - float(ac[t])) ** 0.5
    h, h0 = lam(p) - lam(t), lam(t) - lam(u)
    d1 = (x0 - x0_last) / (h0 / h)
    expected = sigma_t / sigma_s * x - alpha_t * (math.exp(-h) - 1) * x0 - 0.5 * alpha_t * (math.exp(-h) - 1) * d1
    got = dpmpp_2m_step(x0, x0_last, u, t, p, x, ac)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    first = sigma_t / sigma_s * x - alpha_t * (math.exp(-h) - 1) * x0
    torch.testing.assert_close(dpmpp_2m_step(x0, None, None, t, p, x, ac), first, rtol=1e-12, atol=1e-12)
    # to the clean end: x0 itself, with or without a previous estimate (the correction is dropped)
    torch.testing.assert_close(dpmpp_2m_step(x0, x0_last, u, t, -1, x, ac), x0, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="last_t"):
        dpmpp_2m_step(x0, x0_last, None, t, p, x, ac)


def test_euler_steps_closed_form():
    s = NoiseSchedule(prediction_type="epsilon")
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(2)
    x, out = (torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    t, p = 700, 650
    a, ap = ac[t], ac[p]
    x0 = (x - (1 - a).sqrt() * out) / a.sqrt()
    torch.testing.assert_close(euler_step(out, t, p, x, ac, "epsilon"), ap.sqrt() * x0 + (1 - ap).sqrt() * out,
                               rtol=1e-13, atol=1e-13)
    # ancestral in sigma space: s_up, s_down as in k-diffusion, then back to VP
    sf, st = ((1 - a) / a).sqrt(), ((1 - ap) / ap).sqrt()
    s_up = (st**2 * (sf**2 - st**2) / sf**2).sqrt()
    s_down = (st**2 - s_up**2).sqrt()
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    expected = ap.sqrt() * (x0 + s_down * out + s_up * z)
    got = euler_ancestral_step(out, t, p, x, ac, "epsilon", generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_per_sample_timesteps():
    s = NoiseSchedule.stage_512()
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(4)
    x, out, x0, x0_last = (torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64) for _ in range(4))
    last_t, t, prev = torch.tensor([999, 600, 50]), torch.tensor([959, 500, 10]), torch.tensor([919, 400, -1])
    got_dpm = dpmpp_2m_step(x0, x0_last, last_t, t, prev, x, ac)
    got_euler = euler_step(out, t, prev, x, ac, "v_prediction")
    for b in range(3):
        sl = slice(b, b + 1)
        ref = dpmpp_2m_step(x0[sl], x0_last[sl], int(last_t[b]), int(t[b]), int(prev[b]), x[sl], ac)
        torch.testing.assert_close(got_dpm[sl], ref, rtol=1e-14, atol=1e-14)
        ref = euler_step(out[sl], int(t[b]), int(prev[b]), x[sl], ac, "v_prediction")
        torch.testing.assert_close(got_euler[sl], ref, rtol=1e-14, atol=1e-14)


# --------------------------------------------------------------------------- equivalences with DDIM
@pytest.mark.parametrize("preset", ["stage_256", "stage_512"])
@pytest.mark.parametrize("steps", [1, 7, 50])
def test_euler_is_ddim_eta_0_and_ancestral_is_ddim_eta_1(preset, steps):
    s = getattr(NoiseSchedule, preset)()
    x = _x_T()
    torch.testing.assert_close(EulerSampler(s, steps).sample(fake_model, x),
                               DDIMSampler(s, steps).sample(fake_model, x), rtol=1e-12, atol=1e-12)
    # DDIM's eta = 1 step from alpha_bar = 0 takes sqrt(1 - a' - sigma^2) of a round-off-sized difference
    # (~1e-17 -> ~3e-9), where the ancestral ratio r is exactly 0; hence the looser tolerance at zero SNR.
    tol = 1e-7 if s.zero_terminal_snr else 1e-12
    anc = EulerAncestralSampler(s, steps).sample(fake_model, x, generator=torch.Generator().manual_seed(3))
    ddim1 = DDIMSampler(s, steps, eta=1.0).sample(fake_model, x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(anc, ddim1, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- zero terminal SNR
# Distance between a run on the true zero-SNR schedule and one on diffusers' clamped alpha_bar[T - 1] = 2**-24:
# * DDIM, Euler: the first step's x0 estimate uses alpha_{T-1} = 2**-12 ~ 2.4e-4 instead of 0, an O(2**-12)
#   change of O(1) quantities (x_T, v); the later deterministic steps carry it with O(1) gain. Seen <= 8e-4.
# * DPM-Solver++(2M): the same, plus the second step: with the clamp lambda_{T-1} = -log(4096) ~ -8.3 is finite,
#   so the multistep weight h / (2 h_u) is ~h / 17 instead of 0 -- an O(1 / log(4096)) change, not O(2**-12).
#   Seen <= 1.7e-2 (5 steps, where h is large).
# * Euler ancestral: the clamped first step keeps a fraction r = 2**-12 sigma' / alpha' of eps (= x_T) where the
#   true zero gives a fresh draw; r grows as the next grid point nears T (r ~ 0.026 for 50 steps), and the
#   difference is r * sigma' * eps to first order, bounded here by 1.1 * r * max|x_T| + 2e-3.
ZERO_SNR_ATOL = {"ddim": 2e-3, "euler": 2e-3, "dpmpp-2m": 5e-2}


@pytest.mark.parametrize("steps", STEP_COUNTS)
@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_true_zero_terminal_snr_is_finite_and_close_to_the_clamped_run(kind, steps):
    s = NoiseSchedule.stage_512()
    assert float(s.alphas_cumprod[-1]) == 0.0
    x_T = _x_T()
    runs = []
    for clamp in (False, True):
        sampler = make_sampler(kind, s, steps)
        if clamp:
            sampler.alphas_cumprod = _clamped(s.alphas_cumprod)
        xs = []
        sampler.sample(fake_model, x_T, callback=lambda i, t, x, xs=xs: xs.append(x),
                       generator=torch.Generator().manual_seed(3))
        runs.append(xs)
    for x in runs[0]:
        assert torch.isfinite(x).all()
    if kind == "euler-ancestral":
        ac = s.alphas_cumprod
        a1 = float(ac[int(sampler.timesteps[1])]) if steps > 1 else 1.0
        r = math.sqrt(CLAMP * (1 - a1) / (a1 * (1 - CLAMP)))
        atol = 1.1 * r * float(x_T.abs().max()) + 2e-3
    else:
        atol = ZERO_SNR_ATOL[kind]
    for true_zero, clamped in zip(*runs, strict=True):
        torch.testing.assert_close(true_zero, clamped, rtol=0, atol=atol)


def test_first_steps_at_true_zero_snr():
    """From alpha_bar = 0 (v-prediction: x0 = -v, eps = x_T) every sampler's first step is exact and finite."""
    s = NoiseSchedule.stage_512()
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(5)
    x, v, x0_next = (torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    p = 899
    ap = ac[p]
    det = ap.sqrt() * (-v) + (1 - ap).sqrt() * x
    torch.testing.assert_close(euler_step(v, 999, p, x, ac, "v_prediction"), det, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(dpmpp_2m_step(-v, None, None, 999, p, x, ac), det, rtol=1e-14, atol=1e-14)
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    fresh = ap.sqrt() * (-v) + (1 - ap).sqrt() * z  # r = 0: eps (= x_T) is forgotten entirely
    got = euler_ancestral_step(v, 999, p, x, ac, "v_prediction", generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(got, fresh, rtol=1e-14, atol=1e-14)
    # the 2M correction after t = T - 1 vanishes (h_u = inf) at the true zero, but not with diffusers' clamp
    x0_now = torch.randn(x.shape, generator=g, dtype=torch.float64)
    second = dpmpp_2m_step(x0_now, x0_next, 999, p, 799, det, ac)
    assert torch.isfinite(second).all()
    torch.testing.assert_close(second, dpmpp_2m_step(x0_now, None, None, p, 799, det, ac), rtol=0, atol=0)
    clamped = dpmpp_2m_step(x0_now, x0_next, 999, p, 799, det, _clamped(ac))
    assert not torch.allclose(clamped, second)


# --------------------------------------------------------------------------- registry and sampler behaviour
def test_registry():
    assert list(SAMPLERS) == ["ddim", "dpmpp-2m", "euler", "euler-ancestral"]
    assert DEFAULT_SAMPLER in SAMPLERS
    s = NoiseSchedule.stage_512()
    for name, cls in SAMPLERS.items():
        sampler = make_sampler(name, s, 7)
        assert type(sampler) is cls and sampler.name == name
        assert len(sampler) == 7 and sampler.init_noise_sigma == 1.0
        assert torch.equal(sampler.timesteps, ddim_timesteps(7, 1000, "trailing"))
        leading = make_sampler(name, s, 7, spacing="leading")
        assert torch.equal(leading.timesteps, ddim_timesteps(7, 1000, "leading"))
        with pytest.raises(ValueError, match="not in this sampler's grid"):
            sampler.step(torch.zeros(1, 2), 998, torch.zeros(1, 2))
    for bad in ("dpm++", "Euler", "", "ddpm"):
        with pytest.raises(ValueError, match="unknown sampler"):
            make_sampler(bad, s, 10)


@pytest.mark.parametrize("preset", ["stage_256", "stage_512"])
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_oracle_model_recovers_x0(name, preset):
    """A model that outputs the true eps / v of a known x0 at whatever x_t it is given: every sampler lands on x0."""
    s = getattr(NoiseSchedule, preset)()
    ac = s.alphas_cumprod
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(2, 4, 3, 6, 6, generator=g, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)

    def oracle(x, t):
        a = ac[int(t)]
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return eps if s.prediction_type == "epsilon" else velocity(x0, eps, t, ac)

    for steps in (1, 3, 25):
        sampler = make_sampler(name, s, steps)
        x_T = add_noise(x0, noise, int(sampler.timesteps[0]), ac)
        result = sampler.sample(oracle, x_T, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(result, x0, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_reset_makes_runs_repeatable(name):
    s = NoiseSchedule.stage_512()
    sampler = make_sampler(name, s, 10)
    x = _x_T()
    first = sampler.sample(fake_model, x, generator=torch.Generator().manual_seed(1))
    second = sampler.sample(fake_model, x, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    # a half-finished manual chain, then reset() and a manual full chain: same as `sample`
    y = x
    for t in sampler.timesteps[:4]:
        y = sampler.step(fake_model(y, t), t, y, generator=torch.Generator().manual_seed(2))
    sampler.reset()
    y, g = x, torch.Generator().manual_seed(1)
    for t in sampler.timesteps:
        y = sampler.step(fake_model(y, t), t, y, generator=g)
    torch.testing.assert_close(y, first, rtol=0, atol=0)


def test_dpm_solver_state():
    s = NoiseSchedule.stage_256()
    sampler = DPMSolverMultistepSampler(s, 10)
    x = _x_T()
    sampler.sample(fake_model, x)
    assert sampler._last_x0 is not None and sampler._last_t == int(sampler.timesteps[-1])
    sampler.reset()
    assert sampler._last_x0 is None and sampler._last_t is None
    # stale state from an unfinished chain is not used by a chain restarted at timesteps[0] without reset()
    t0, t1 = sampler.timesteps[:2].tolist()
    y = sampler.step(fake_model(x, t0), t0, x)
    sampler.step(fake_model(y, t1), t1, y)
    stale_first = sampler.step(fake_model(x, t0), t0, x)
    torch.testing.assert_close(stale_first, y, rtol=0, atol=0)


def test_ancestral_reproducible_with_seed():
    s = NoiseSchedule.stage_512()
    sampler = EulerAncestralSampler(s, 10)
    x = _x_T()
    a = sampler.sample(fake_model, x, generator=torch.Generator().manual_seed(42))
    b = sampler.sample(fake_model, x, generator=torch.Generator().manual_seed(42))
    c = sampler.sample(fake_model, x, generator=torch.Generator().manual_seed(43))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_float32_latents(name):
    s = NoiseSchedule.stage_512()
    x32 = _x_T(dtype=torch.float32)
    result = make_sampler(name, s, 10).sample(fake_model, x32, generator=torch.Generator().manual_seed(0))
    assert result.dtype == torch.float32 and torch.isfinite(result).all()
    ref = make_sampler(name, s, 10).sample(fake_model, x32.double(), generator=torch.Generator().manual_seed(0))
    if name != "euler-ancestral":  # float32 and float64 noise draws differ
        torch.testing.assert_close(result.double(), ref, rtol=1e-4, atol=1e-4)

