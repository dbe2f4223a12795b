"""I3D features and FVD against the cd-fvd package: same random weights, same real mp4 files.

cd-fvd's top-level `cdfvd.fvd` imports torchvision (for its VideoMAE transforms), which CPU-only installs lack,
so the reference is its I3D network and preprocessing (`cdfvd.third_party.i3d`), its `FeatureStats`
(`cdfvd.utils.metric_utils`) and its FVD formula (`compute_fvd_from_stats`: scipy `sqrtm`), imported directly.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from emu_video.evaluation.detectors import i3d_preprocess, load_i3d
from emu_video.evaluation.features import extract
from emu_video.evaluation.frechet import FeatureStats, frechet_from_stats
from emu_video.evaluation.videos import list_videos, sample_clip
from emu_video.io.video import write_video

FRAMES = 9  # the fewest frames and
SIZE = 193  # the smallest side I3D takes (7x7 after five stride-2 stages): keeps this test cheap on CPU


def _write_set(folder, seed: int, n: int = 2, size: int = 64):
    rng = np.random.default_rng(seed)
    for i in range(n):
        frames = np.full((FRAMES + 2, size, size, 3), rng.integers(0, 80), np.uint8)
        color, (x0, y0), v = rng.integers(60, 255, 3), rng.integers(0, size // 2, 2), rng.integers(1, 4, 2)
        for t in range(frames.shape[0]):
            x, y = x0 + v[0] * t, y0 + v[1] * t
            frames[t, y : y + size // 3, x : x + size // 4] = color
        write_video(folder / f"{i:03d}.mp4", frames, fps=8)
    return folder


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The same random weights for both networks, saved in the i3d_pretrained_400.pt format."""
    pytorch_i3d = pytest.importorskip("cdfvd.third_party.i3d.pytorch_i3d")
    torch.manual_seed(0)
    ref = pytorch_i3d.InceptionI3d(400, in_channels=3)
    for m in ref.modules():  # He init keeps activations alive through 20 random layers (the default fades them)
        if isinstance(m, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    state = ref.state_dict()
    path = tmp_path_factory.mktemp("i3d") / "i3d_pretrained_400.pt"
    torch.save(state, path)
    return path


def test_features_and_fvd_match_cd_fvd(weights, tmp_path):
    from cdfvd.third_party.i3d.utils import load_i3d_model, preprocess_i3d
    from cdfvd.utils.metric_utils import FeatureStats as RefStats

    real = list_videos(_write_set(tmp_path / "real", seed=0))
    fake = list_videos(_write_set(tmp_path / "fake", seed=1))

    net = load_i3d(weights)
    prepare = functools.partial(i3d_preprocess, size=SIZE)
    ours = {name: extract(paths, net, prepare, FRAMES, batch_size=2, progress=False)
            for name, paths in (("real", real), ("fake", fake))}

    ref_model = load_i3d_model(torch.device("cpu"), ckpt_path=str(weights))
    ref_stats = {}
    for name, paths in (("real", real), ("fake", fake)):
        videos = np.stack([sample_clip(p, FRAMES) for p in paths])  # (B, T, H, W, 3) uint8, cd-fvd's array input
        with torch.no_grad():
            feats = ref_model(preprocess_i3d(videos, (SIZE, SIZE)))
        # Same float32 ops in the same order: features agree to float32 rounding (1e-4 relative).
        torch.testing.assert_close(torch.from_numpy(ours[name]), feats, rtol=1e-4, atol=1e-4)
        ref_stats[name] = RefStats(capture_mean_cov=True)
        ref_stats[name].append_torch(feats, rank=0, num_gpus=1)

    import scipy.linalg

    mu_f, s_f = ref_stats["fake"].get_mean_cov()
    mu_r, s_r = ref_stats["real"].get_mean_cov()
    root = scipy.linalg.sqrtm(s_r @ s_f)
    ref_fvd = float(np.real(np.square(mu_r - mu_f).sum() + np.trace(s_f + s_r - root * 2)))

    stats = {}
    for name in ("real", "fake"):
        stats[name] = FeatureStats()
        stats[name].add(ours[name])
    fvd = frechet_from_stats(stats["real"], stats["fake"])
    assert ref_fvd > 0.1
    # Two clips per side: rank-1 covariances, where sqrtm's iterations carry ~1e-6 relative noise.
    assert fvd == pytest.approx(ref_fvd, rel=1e-5)
