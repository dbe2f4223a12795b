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
