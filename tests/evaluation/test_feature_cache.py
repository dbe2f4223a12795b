"""The I3D feature cache of `emu-video evaluate`: reused while nothing changes, recomputed when a video file,
the network file or a feature setting changes, bypassed by --no-cache."""

from __future__ import annotations

import json
import os

import builders
import numpy as np
import pytest

from emu_video.cli.main import main
from emu_video.evaluation.detectors import VideoNet
from emu_video.io.video import write_video


def _clips(folder, n, seed):
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.integers(0, 256, (1, 24, 24, 3))
        frames = np.clip(base + np.arange(12)[:, None, None, None] * rng.integers(-8, 9), 0, 255).astype(np.uint8)
        write_video(folder / f"{i:02d}.mp4", frames, 8)
    return folder


@pytest.fixture
def counted(monkeypatch):
    """Counts the clips that go through a network."""
    seen = {"clips": 0}
    original = VideoNet.features

    def features(self, batch):
        seen["clips"] += batch.shape[0]
        return original(self, batch)

    monkeypatch.setattr(VideoNet, "features", features)
    return seen


def test_second_run_reuses_and_any_change_recomputes(tmp_path, counted, capsys):
    real, fake = _clips(tmp_path / "real", 4, 0), _clips(tmp_path / "fake", 3, 1)
    i3d = builders.write_tiny_i3d(tmp_path / "i3d_torchscript.pt", seed=0)
    cache = tmp_path / "cache"

    def run(*extra, out="r.json"):
        counted["clips"] = 0
        assert main(["evaluate", "--real", str(real), "--fake", str(fake), "--metrics", "fvd", "--i3d", str(i3d),
                     "--frames", "10", "--cache", str(cache), "--no-plot", "--out", str(tmp_path / out),
                     *extra]) == 0
        report = json.loads((tmp_path / out).read_text())
        status = {os.path.basename(v["folder"]): v["status"] for v in report.get("feature_cache", {}).values()}
        return report["folders"]["fake"]["fvd"], status, counted["clips"]

    fvd, status, clips = run()
    assert status == {"real": "computed", "fake": "computed"} and clips == 7
    assert len(list(cache.glob("i3d-*.npz"))) == 2
    again, status, clips = run()
    assert status == {"real": "reused", "fake": "reused"} and clips == 0 and again == fvd
    assert "I3D features of" in capsys.readouterr().out

    # The same numbers as without any cache.
    fresh, status, clips = run("--no-cache", out="nocache.json")
    assert status == {} and clips == 7 and fresh == pytest.approx(fvd, rel=1e-6)

    # A touched real video: the real set again, the fake one still cached.
    st = (real / "01.mp4").stat()
    os.utime(real / "01.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    _, status, clips = run()
    assert status == {"real": "computed", "fake": "reused"} and clips == 4

    # A video added to a folder: that set again, with one clip more.
    _clips(tmp_path / "extra", 1, 5)
    os.replace(tmp_path / "extra" / "00.mp4", fake / "99.mp4")
    _, status, clips = run()
    assert status == {"real": "reused", "fake": "computed"} and clips == 4

    # Another clip length, or another network file of the same size: both sets again.
    _, status, clips = run("--frames", "9")
    assert status == {"real": "computed", "fake": "computed"} and clips == 8
    size = i3d.stat().st_size
    builders.write_tiny_i3d(i3d, seed=1)
    assert i3d.stat().st_size == size
    _, status, clips = run("--frames", "9")
    assert status == {"real": "computed", "fake": "computed"} and clips == 8


def test_a_damaged_cache_file_is_recomputed(tmp_path, counted):
    real, fake = _clips(tmp_path / "real", 2, 0), _clips(tmp_path / "fake", 2, 1)
    i3d = builders.write_tiny_i3d(tmp_path / "i3d.pt")
    argv = ["evaluate", "--real", str(real), "--fake", str(fake), "--metrics", "fvd", "--i3d", str(i3d),
            "--frames", "9", "--no-plot", "--out", str(tmp_path / "rep" / "r.json")]
    assert main(argv) == 0 and counted["clips"] == 4
    files = sorted((tmp_path / "rep" / "feature-cache").glob("*.npz"))  # the default: next to the report
    assert len(files) == 2
    files[0].write_bytes(b"not a zip")
    counted["clips"] = 0
    assert main(argv) == 0 and counted["clips"] == 2
