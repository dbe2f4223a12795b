import pytest
import torch

from emu_video.diffusion import (
    GUIDANCE_ORDER,
    classifier_free_guidance,
    repeat_for_guidance,
    split_guidance,
    two_condition_guidance,
)


def _three(shape=(2, 8, 3, 4, 4)):
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(3))


def test_two_condition_identities():
    x_null, x_image, x_full = _three()
    torch.testing.assert_close(two_condition_guidance(x_null, x_image, x_full, 1.0, 1.0), x_full)
    torch.testing.assert_close(two_condition_guidance(x_null, x_image, x_full, 0.0, 0.0), x_null)
    # w_img = 1, w_txt = 0 gives the image-only prediction
    torch.testing.assert_close(two_condition_guidance(x_null, x_image, x_full, 1.0, 0.0), x_image)


@pytest.mark.parametrize("w_img,w_txt", [(2.0, 7.5), (1.0, 8.0), (3.0, 16.0), (-0.5, 0.25)])
def test_two_condition_against_formula(w_img, w_txt):
    x_null, x_image, x_full = _three()
    got = two_condition_guidance(x_null, x_image, x_full, w_img=w_img, w_txt=w_txt)
    # elementwise, written out independently
    n, i, f = x_null.flatten().tolist(), x_image.flatten().tolist(), x_full.flatten().tolist()
    expected = [a + w_img * (b - a) + w_txt * (c - b) for a, b, c in zip(n, i, f)]
    torch.testing.assert_close(got.flatten(), torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_two_condition_defaults_are_the_papers():
    x_null, x_image, x_full = _three()
    torch.testing.assert_close(two_condition_guidance(x_null, x_image, x_full),
                               x_null + 2.0 * (x_image - x_null) + 7.5 * (x_full - x_image))


def test_classifier_free_guidance():
    uncond, cond, _ = _three()
    torch.testing.assert_close(classifier_free_guidance(uncond, cond, 1.0), cond)
    torch.testing.assert_close(classifier_free_guidance(uncond, cond, 0.0), uncond)
    torch.testing.assert_close(classifier_free_guidance(uncond, cond, 7.5), 7.5 * cond - 6.5 * uncond)


def test_repeat_and_split_round_trip_in_order():
    assert GUIDANCE_ORDER == ("null", "image", "full")
    x = torch.arange(2 * 3).reshape(2, 3).float()
    batched = repeat_for_guidance(x, 3)
    assert batched.shape == (6, 3)
    for chunk in split_guidance(batched, 3):
        assert torch.equal(chunk, x)
    # a model that tags each chunk: split returns them in batch order [null, image, full]
    out = batched + torch.tensor([0.0, 0.0, 100.0, 100.0, 200.0, 200.0])[:, None]
    x_null, x_image, x_full = split_guidance(out, 3)
    assert torch.equal(x_null, x) and torch.equal(x_image, x + 100) and torch.equal(x_full, x + 200)
    u, c = split_guidance(repeat_for_guidance(x, 2), 2)
    assert torch.equal(u, x) and torch.equal(c, x)


def test_split_rejects_uneven_batch():
    with pytest.raises(ValueError, match="split"):
        split_guidance(torch.zeros(5, 2), 3)
    with pytest.raises(ValueError):
        repeat_for_guidance(torch.zeros(1), 0)


# The guidance objects: which passes they batch, in which order, and how they combine them ---------------------
class _TaggingModel:
    """A stand-in network whose output says which conditions each batch entry had: 1 for the text, 10 for the
    image channels, so a pass's output identifies the pass."""

    def __init__(self, with_channels=True):
        self.with_channels = with_channels
        self.calls = []

    def pass_inputs(self, p):
        channels = torch.full((1, 1, 2), 10.0 if p.image else 0.0) if self.with_channels else None
        return channels, [torch.full((1, 3), 1.0 if p.text else 0.0)]

    def __call__(self, sample, t, contexts):
        self.calls.append((sample.shape[0], t.tolist()))
        tag = contexts[0][:, 0] + (sample[:, 1, 0] if self.with_channels else 0)
        return sample[:, :1] * 0 + tag.reshape(-1, 1, 1)


def test_two_condition_object_batches_null_image_full_in_one_forward():
    from emu_video.diffusion import TwoConditionGuidance

    model = _TaggingModel()
    fn = TwoConditionGuidance(2.0, 7.5).denoiser(model)
    out = fn(torch.zeros(1, 1, 2), torch.tensor(7))
    assert model.calls == [(3, [7, 7, 7])]  # one forward, three passes
    x_null, x_image, x_full = 0.0, 10.0, 11.0  # the tags of [null, image, full]
    assert torch.allclose(out, torch.tensor(x_null + 2.0 * (x_image - x_null) + 7.5 * (x_full - x_image)))


def test_guidance_objects_at_scale_one_run_a_single_pass():
    from emu_video.diffusion import (
        ClassifierFreeGuidance,
        NoGuidance,
        TwoConditionGuidance,
    )

    for guidance in (TwoConditionGuidance(1.0, 1.0), ClassifierFreeGuidance(1.0), NoGuidance()):
        model = _TaggingModel()
        out = guidance.denoiser(model)(torch.zeros(1, 1, 2), torch.tensor(3))
        assert model.calls == [(1, [3])] and torch.allclose(out, torch.tensor(11.0))


def test_one_condition_object_drops_only_the_text():
    from emu_video.diffusion import ClassifierFreeGuidance

    model = _TaggingModel(with_channels=False)
    out = ClassifierFreeGuidance(7.5).denoiser(model)(torch.zeros(1, 1, 2), torch.tensor(3))
    assert model.calls == [(2, [3, 3])] and torch.allclose(out, torch.tensor(0.0 + 7.5 * (1.0 - 0.0)))
    model = _TaggingModel()  # with an image condition, both passes keep it
    out = ClassifierFreeGuidance(3.0).denoiser(model)(torch.zeros(1, 1, 2), torch.tensor(3))
    assert torch.allclose(out, torch.tensor(10.0 + 3.0 * (11.0 - 10.0)))


def test_truncated_guidance_keeps_fewer_passes_with_the_right_formula():
    from emu_video.diffusion.guidance import (
        FULL,
        IMAGE_ONLY,
        ClassifierFreeGuidance,
        NoGuidance,
        TwoConditionGuidance,
        truncated_guidance,
    )

    two = TwoConditionGuidance(2.0, 7.5)
    assert truncated_guidance(two, "cond").passes() == (FULL,)
    text = truncated_guidance(two, "text")
    assert text.passes() == (IMAGE_ONLY, FULL)
    x_img, x_full = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(text.combine([x_img, x_full]), x_img + 7.5 * (x_full - x_img))
    one = ClassifierFreeGuidance(5.0)
    assert isinstance(truncated_guidance(one, "cond"), NoGuidance) and truncated_guidance(one, "text") is one
    assert isinstance(truncated_guidance(NoGuidance(), "text"), NoGuidance)
    with pytest.raises(ValueError):
        truncated_guidance(two, "null")
