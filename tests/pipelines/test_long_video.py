"""Long videos: chained extensions on the tiny model, re-anchoring, and interpolation of any length."""

import numpy as np
import pytest
import torch

from emu_video.errors import UserError
from emu_video.pipelines import InterpolatePipeline, LongVideoPipeline
from emu_video.pipelines.long_video import anchor_statistics

PROMPTS = ["a red circle moves left", "a red circle moves right", "a red circle stays still"]


def test_anchor_statistics_gives_each_channel_the_reference_mean_and_spread():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 6, 5, 5, generator=g) * 3 + 2
    ref = torch.randn(1, 4, 9, 5, 5, generator=g) * torch.tensor([0.5, 1, 2, 4]).view(1, 4, 1, 1, 1) - 1
    out = anchor_statistics(x, ref).numpy()
    r, xn = ref.numpy(), x.numpy()
    for ch in range(4):
        np.testing.assert_allclose(out[0, ch].mean(), r[0, ch].mean(), atol=1e-5)
        np.testing.assert_allclose(out[0, ch].std(ddof=1), r[0, ch].std(ddof=1), rtol=1e-5)
        # an affine map of the channel: its pattern (correlation with the input) is kept
        assert np.corrcoef(out[0, ch].ravel(), xn[0, ch].ravel())[0, 1] > 0.9999


def test_chained_segments_and_their_places_in_the_video(components):
    pipe = LongVideoPipeline(components)
    seen = []
    kw = {"seed": 1, "num_past": 2, "num_new": 6, "progress": False, "num_inference_steps": 1}
    out = pipe(PROMPTS, first_image=np.full((16, 16, 3), 90, np.uint8), interpolate=False, anchor="none",
               on_segment=lambda k, n, p: seen.append((k, n, p)), **kw)
    assert seen == [(1, 3, PROMPTS[0]), (2, 3, PROMPTS[1]), (3, 3, PROMPTS[2])]
    assert out.fps == 4.0 and out.frames.shape == (8 + 6 + 6, 16, 16, 3)  # the tiny model's clip is 8 frames
    assert [(s["start"], s["end"]) for s in out.info["segments"]] == [(0, 8), (8, 14), (14, 20)]
    assert out.info["weights"] == "first_frame"  # no extension weights in this folder: F's
    anchored = pipe(PROMPTS, first_image=np.full((16, 16, 3), 90, np.uint8), interpolate=False, anchor="first", **kw)
    assert torch.equal(anchored.latents[:, :, :8], out.latents[:, :, :8])  # same seed; segment 1 is not touched
    assert not torch.equal(anchored.latents[:, :, 8:], out.latents[:, :, 8:])
    ref, later = anchored.latents[:, :, :8], anchored.latents[:, :, 8:14]
    torch.testing.assert_close(later.mean((2, 3, 4)), ref.mean((2, 3, 4)), atol=1e-4, rtol=1e-4)


def test_a_given_video_is_kept_and_continued(components):
    pipe = LongVideoPipeline(components)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    out = pipe(PROMPTS[:2], video=video, fps=4.0, num_past=4, seed=0, interpolate=False, progress=False)
    assert out.frames.shape[0] == 12 + 4 + 4 and np.array_equal(out.frames[:12], video)
    assert [s["prompt"] for s in out.info["segments"]] == ["", *PROMPTS[:2]]
    with pytest.raises(UserError, match="extension conditions on the last 4"):
        pipe(PROMPTS[:1], video=video[:3], fps=4.0, num_past=4, progress=False)
    with pytest.raises(UserError, match="anchor"):
        pipe(PROMPTS[:1], video=video, anchor="mean", progress=False)
    with pytest.raises(UserError, match="prompt 2 is empty"):
        pipe([PROMPTS[0], " "], video=video, progress=False)


def test_interpolation_of_any_length_repeats_the_tail_and_cuts_it_off(components):
    interp = InterpolatePipeline(components)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 12, 2, 2, generator=g)
    padded = torch.cat([latents, latents[:, :, -1:].expand(-1, -1, 4, -1, -1)], dim=2)
    full = interp(None, "x", latents=padded, decode=False, seed=3, progress=False).latents
    cut = interp(None, "x", latents=latents, decode=False, repeat_tail=True, seed=3, progress=False).latents
    assert cut.shape[2] == full.shape[2] - 4 * 4
    torch.testing.assert_close(cut, full[:, :, : cut.shape[2]])
    positions = interp.layout().output_positions(12)
    assert positions[0] == 4 and positions[12] == cut.shape[2]  # input 0 after the 4 leading pad frames


def test_long_video_interpolated_in_one_pass(components):
    out = LongVideoPipeline(components)(PROMPTS[:2], first_image=np.full((16, 16, 3), 90, np.uint8), seed=0,
                                        num_past=4, num_inference_steps=1, interpolation_steps=1, progress=False)
    assert out.fps == 16.0 and out.info["base_frames"] == 12
    segs = out.info["segments"]
    assert segs[0]["start"] == 0 and segs[-1]["end"] == out.frames.shape[0] and segs[0]["end"] == segs[1]["start"]
