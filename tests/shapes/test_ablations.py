"""The ablation driver end to end on a tiny model (two arms trained a few steps with equal compute, a handful of
judged clips, the report and the packaged videos), and its statistics against scipy."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emu_video.shapes.ablation_stats import bootstrap_mean, paired_win_rate, rate
from emu_video.shapes.ablations import COMPARISONS, checkpoint_state, stage_dir

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "stages" / "ablations"
# The real arm configs, made tiny: 16 px, 8 frames, batch 2, on the CPU.
TINY = ["data.resolution=16", "data.num_frames=8", "train.batch_size=2", "data.num_workers=0", "train.device=cpu",
        "log.progress=false", "log.tensorboard=false", "model.clause_tokens=-1", "optim.warmup_steps=1",
        "train.checkpoint_every=2", "train.export_dtype='float32'"]


def _driver():
    spec = importlib.util.spec_from_file_location("ablations_script", ROOT / "scripts" / "ablations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def _one_thread(one_thread):
    yield


# Statistics against references ------------------------------------------------------------------------------
@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (57, 200), (200, 200), (123, 396)])
def test_rate_interval_is_scipys_wilson(k, n):
    stats = pytest.importorskip("scipy.stats")
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    got = rate([True] * k + [False] * (n - k))
    assert got["k"] == k and got["n"] == n and got["rate"] == pytest.approx(k / n)
    assert got["ci95"] == pytest.approx([ref.low, ref.high], abs=1e-9)


def test_paired_win_rate_counts_ties_and_matches_wilson_and_the_bootstrap():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a = [(int(x), round(float(y), 1)) for x, y in zip(rng.integers(0, 2, 300), rng.random(300))]
    b = [(int(x), round(float(y), 1)) for x, y in zip(rng.integers(0, 2, 300), rng.random(300))]
    b[:40] = a[:40]  # 40 certain ties
    res = paired_win_rate(a, b)
    wins = sum(x > y for x, y in zip(a, b))
    losses = sum(x < y for x, y in zip(a, b))
    assert (res["wins"], res["losses"], res["ties"]) == (wins, losses, 300 - wins - losses)
    assert res["ties"] >= 40
    ref = stats.binomtest(wins, wins + losses).proportion_ci(method="wilson")
    assert res["win_rate"] == pytest.approx(wins / (wins + losses))
    assert res["win_rate_ci95"] == pytest.approx([ref.low, ref.high], abs=1e-9)
    points = np.array([1.0 if x > y else 0.0 if x < y else 0.5 for x, y in zip(a, b)])
    assert res["win_rate_with_ties"] == pytest.approx(points.mean())
    boot = stats.bootstrap((points,), np.mean, n_resamples=10_000, method="percentile", random_state=0)
    assert res["win_rate_with_ties_ci95"] == pytest.approx([boot.confidence_interval.low,
                                                            boot.confidence_interval.high], abs=0.01)
    # The mean's bootstrap interval is near the normal one (1.96 standard errors).
    se = points.std(ddof=1) / np.sqrt(points.size)
    lo, hi = bootstrap_mean(points)["ci95"]
    assert lo == pytest.approx(points.mean() - 1.96 * se, abs=0.01) and hi == pytest.approx(points.mean() + 1.96 * se,
                                                                                           abs=0.01)
    with pytest.raises(ValueError, match="same items"):
        paired_win_rate(a, b[:-1])


# Fresh temporal layers ----------------------------------------------------------------------------------------
def test_fresh_temporal_layers_do_not_depend_on_what_the_model_held():
    from emu_video.models import VideoUNet, tiny_config
    from emu_video.training.model_setup import fresh_video_layers

    units = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        unet = VideoUNet(tiny_config())
        with torch.no_grad():
            for p in unet.parameters():
                p.add_(torch.randn_like(p))
        fresh_video_layers(unet, seed=7)
        units.append(unet)
    a, b = (dict(u.video_named_parameters()) for u in units)
    assert all(torch.equal(a[n], b[n]) for n in a)
    spatial_a, spatial_b = (dict(u.spatial_named_parameters()) for u in units)
    assert not torch.equal(next(iter(spatial_a.values())), next(iter(spatial_b.values())))  # kept as they were
    # identity: the temporal layers add nothing yet (the video U-Net computes what the image U-Net does per frame)
    unet = units[0].eval()
    x = torch.randn(1, 4, 3, 8, 8)  # (B, C, T, H, W)
    ctx = [torch.randn(1, 7, d) for d in unet.config.context_dims]
    with torch.no_grad():
        video, frames = unet(x, 10, ctx, use_temporal=True), unet(x, 10, ctx, use_temporal=False)
    assert torch.allclose(video, frames, atol=1e-5)


# The driver end to end -------------------------------------------------------------------------------------------
def test_driver_trains_two_arms_equally_evaluates_and_packages(tmp_path, tiny_model_dir, _one_thread):
    script = _driver()
    runs, out = tmp_path / "runs", tmp_path / "eval"
    assert script.main(["train", "--compare", "a", "--steps", "3", "--runs", str(runs), "--base-model",
                        str(tiny_model_dir), "--in-process", *TINY]) == 0
    comp = COMPARISONS["a"]
    for arm in comp.arms:
        state = checkpoint_state(stage_dir(runs, arm, 0))
        assert state["step"] == 3 and state["config"]["train"]["batch_size"] == 2
        records = [json.loads(x) for x in (runs / arm.run / "compute.jsonl").read_text().splitlines()]
        assert records[-1]["steps_after"] == 3 and records[-1]["device"].startswith("CPU")
    direct_model = runs / "direct" / "direct" / "model"
    assert (direct_model / "direct" / "temporal.safetensors").is_file()
    # Training again does nothing: both arms are done.
    assert script.main(["train", "--compare", "a", "--steps", "3", "--runs", str(runs), "--base-model",
                        str(tiny_model_dir), "--in-process", *TINY]) == 0
    assert len((runs / "direct" / "compute.jsonl").read_text().splitlines()) == 1

    common = ["--compare", "a", "--runs", str(runs), "--out", str(out)]
    assert script.main(["evaluate", *common, "--limit", "1", "--seeds", "0", "--quiet", "--save", "webp",
                        "--shard", "0/2"]) == 0
    assert script.main(["evaluate", *common, "--limit", "1", "--seeds", "0", "--quiet", "--save", "webp",
                        "--shard", "1/2"]) == 0
    assert script.main(["report", *common, "--label", "CPU test"]) == 0
    res = json.loads((out / comp.name / "results.json").read_text())
    assert res["sets"]["all"]["items"] == 3 and set(res["sets"]) == {"eval-seen", "eval-heldout", "eval-two", "all"}
    w = res["sets"]["all"]["win_faithfulness"]
    assert w["wins"] + w["losses"] + w["ties"] == 3
    assert res["compute"]["factorized"]["samples"] == res["compute"]["direct"]["samples"] == 6

    dest = tmp_path / "package"
    assert script.main(["package", *common, "--dest", str(dest)]) == 0
    names = {p.name for p in (dest / "factorized").iterdir()}
    assert len(names) == 3 and names == {p.name for p in (dest / "direct").iterdir()}
    lines = [json.loads(x) for x in (dest / "prompts.jsonl").read_text().splitlines()]
    assert {x["file"] for x in lines} == names and {x["set"] for x in lines} == {"eval-seen", "eval-heldout",
                                                                                  "eval-two"}
    from emu_video.io.video import read_video

    clip = read_video(dest / "direct" / sorted(names)[0])
    assert clip.frames.shape[0] == res["frames"][0][0] > 8  # interpolated to more frames than were trained
    packaged = json.loads((dest / "results.json").read_text())
    assert packaged["files_per_arm"] == 3 and set(packaged["judged_packaged_files"]) == {"factorized", "direct"}

    plot = script.main(["plot", str(out / comp.name / "results.json"), "--out", str(tmp_path / "w.png"),
                        "--label", "CPU test"])
    assert plot == 0 and (tmp_path / "w.png").stat().st_size > 1000


def test_driver_refuses_a_missing_budget(capsys):
    script = _driver()
    assert script.main(["train", "--compare", "d", "--steps", "5"]) == 2
    assert "budgeted in minutes" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted({s.config for c in COMPARISONS.values() for a in c.arms for s in a.stages}))
def test_every_arm_config_loads(name, tmp_path):
    from emu_video.training.config import load_config

    cfg = load_config(str(CONFIGS / name), [f"train.output_dir={json.dumps(str(tmp_path))}"])
    base = load_config(str(CONFIGS / "factorized.toml"), [f"train.output_dir={json.dumps(str(tmp_path))}"])
    same = ("data", "shapes", "optim", "dropout")
    differs = [k for k in same if getattr(cfg, k) != getattr(base, k)]
    # an arm changes one thing: the layout, the schedule, what trains, or (multi-stage) the resolution
    assert differs in ([], ["data"]) and cfg.train.batch_size == base.train.batch_size
    assert cfg.train.seed == base.train.seed and cfg.model.temporal_init in ("fresh", "video")


def test_train_spatial_is_only_for_the_video_stage(tmp_path):
    from emu_video.errors import UserError
    from emu_video.training.config import load_config

    with pytest.raises(UserError, match="train_spatial"):
        load_config(str(CONFIGS / "direct.toml"), [f"train.output_dir={json.dumps(str(tmp_path))}",
                                                   "model.train_spatial=true"])
