"""Known frames placed in a zero video with their mask, against index_copy_, for any positions (the layouts'
own positions are tested in test_layouts.py)."""

import pytest
import torch

from emu_video.diffusion.conditioning import (
    interpolation_positions,
    place_frames,
    positions_slice,
)


def _reference(known, num_frames, positions):
    b, c, k, h, w = known.shape
    idx = torch.tensor(positions)
    cond = torch.zeros(b, c, num_frames, h, w).index_copy_(2, idx, known)
    mask = torch.zeros(b, 1, num_frames, h, w).index_copy_(2, idx, torch.ones(b, 1, k, h, w))
    return cond, mask


@pytest.mark.parametrize("num_frames, positions", [
    (5, [0]), (37, interpolation_positions()), (12, [0, 1, 2, 3]), (9, [0, 3, 4]), (6, [4, 1]), (7, [6, 4, 2]),
])
def test_place_frames_matches_index_copy(num_frames, positions):
    torch.manual_seed(0)
    known = torch.randn(2, 3, len(positions), 4, 5)
    cond, mask = place_frames(known, num_frames, positions)
    ref_cond, ref_mask = _reference(known, num_frames, positions)
    assert torch.equal(cond, ref_cond) and torch.equal(mask, ref_mask)


def test_no_known_frames_gives_zero_channels():
    cond, mask = place_frames(torch.randn(2, 3, 0, 4, 5), 6, [])
    assert cond.shape == (2, 3, 6, 4, 5) and mask.shape == (2, 1, 6, 4, 5)
    assert cond.abs().sum() == 0 and mask.sum() == 0


def test_bad_positions_are_refused():
    known = torch.randn(1, 4, 2, 2, 2)
    with pytest.raises(ValueError, match="2 known frames but 1 positions"):
        place_frames(known, 5, [0])
    with pytest.raises(ValueError, match="distinct and inside"):
        place_frames(known, 5, [0, 5])
    with pytest.raises(ValueError, match="distinct and inside"):
        place_frames(known, 5, [1, 1])



@pytest.mark.parametrize("positions, expected", [
    ([0], slice(0, 1, 1)), ([2, 3, 4], slice(2, 5, 1)), (interpolation_positions(), slice(4, 33, 4)),
    ([0, 3, 4], None), ([4, 1], None), ([6, 4, 2], None), ([], None),
])
def test_positions_slice(positions, expected):
    assert positions_slice(positions) == expected
    if expected is not None:
        assert list(range(40))[expected] == positions
