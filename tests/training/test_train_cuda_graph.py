"""`train.cuda_graph`: the trainer's step with the host decisions moved onto the device (NaN/Inf skip through
fused AdamW's found_inf flag, learning rate and EMA weight in tensors), so that it can be replayed from one
recorded CUDA graph. On the CPU that step runs eagerly and must train like the ordinary step: same losses,
weights, EMA, skipped steps and resumption. On a GPU (skipped in CPU-only CI) the recorded replays are
checked against the ordinary step."""

import json
import shutil

import pytest
import torch
from train_helpers import FAST, metrics, run_stage

from emu_video.errors import UserError
from emu_video.training.checkpoint import read_tensors
from emu_video.training.config import load_config
from emu_video.training.trainer import Trainer


def _q(path) -> str:
    return json.dumps(str(path))


# Every stage kind on Shapes World clips rendered on the fly (no files): its extra overrides. The
# interpolation stage takes 2 known frames, one new frame between them and one before and after (5 frames),
# with noise augmentation on; the autoencoder trains on random crops with the foreground weighting.
STAGES = {
    "video_256": ("data.num_frames=4",),
    "text_to_image": (),
    "interpolation": ("interpolation.input_frames=2", "interpolation.factor=2", "interpolation.pad=1",
                      "data.num_frames=5"),
    "autoencoder": ("data.resolution=32", "autoencoder.crop=16", "autoencoder.foreground_weight=5.0",
                    "autoencoder.block_out_channels=[8, 16]", "autoencoder.layers_per_block=1",
                    "autoencoder.norm_num_groups=4"),
}


def _stage_args(stage, model_dir, *extra):
    init = () if stage == "autoencoder" else (f"model.init={_q(model_dir)}",)
    return ("data.source=\"shapes\"", *init, "optim.warmup_steps=3", "train.checkpoint_every=100",
            *STAGES[stage], *extra)


def _close(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k, value in a.items():
        torch.testing.assert_close(value, b[k], atol=atol, rtol=0, msg=k)


def _run_pair(tmp_path, stage, *args):
    # A weight whose gradient is rounding noise (e.g. an attention key bias, which softmax ignores) moves by
    # about lr in either sign under Adam's default eps, whatever the noise's size; a larger eps keeps every
    # update proportional to its gradient, so the two optimiser kernels (fused here, for-each there) agree.
    args = (*args, "optim.eps=0.01")
    plain = run_stage(stage, tmp_path / "plain", *args)
    graphed = run_stage(stage, tmp_path / "graphed", *args, "train.cuda_graph=true", "train.cuda_graph_warmup=1")
    assert plain.graphed is None and graphed.graphed is not None
    return metrics(tmp_path / "plain"), metrics(tmp_path / "graphed"), graphed


def _weights(tmp_path, step: int, stems=("trainable", "ema")):
    folder = f"checkpoints/step-{step:08d}"
    return [(read_tensors(tmp_path / "plain" / folder, stem), read_tensors(tmp_path / "graphed" / folder, stem))
            for stem in stems]


@pytest.mark.parametrize("stage", list(STAGES))
def test_device_side_step_trains_like_the_ordinary_step(tmp_path, micro_model_dir, stage):
    a, b, graphed = _run_pair(tmp_path, stage, *_stage_args(stage, micro_model_dir, "train.max_steps=4"))
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    for s in a:
        assert a[s]["lr"] == b[s]["lr"]  # the warm-up reaches the tensor learning rate
        assert b[s]["loss"] == pytest.approx(a[s]["loss"], rel=1e-5, abs=1e-7), s
        assert b[s]["grad_norm"] == pytest.approx(a[s]["grad_norm"], rel=1e-4), s
    for plain, recorded in _weights(tmp_path, 4):
        _close(plain, recorded, atol=2e-6)
    assert {float(v["step"]) for v in graphed.optimizer.state.values()} == {4.0}


def test_device_side_step_skips_nan_steps_and_resumes(tmp_path, micro_model_dir):
    out = tmp_path / "run"
    cfg = load_config("video_256", [*FAST, f"train.output_dir={_q(out)}", *_stage_args(
        "video_256", micro_model_dir, "train.max_steps=5", "train.checkpoint_every=1", "train.max_nonfinite_steps=3",
        "train.cuda_graph=true")])
    trainer = Trainer(cfg)
    real = trainer.task.loss_from

    def loss_from(drawn):  # NaN at the second and the third step
        value = real(drawn)
        return value * float("nan") if trainer.step in (1, 2) else value

    trainer.task.loss_from = loss_from
    seen = {}

    def watch(original=trainer.train_step):
        before = {n: p.detach().clone() for n, p in trainer.named}
        ema = [s.clone() for s in trainer.ema.shadow]
        r = original()
        seen[trainer.step] = (all(torch.equal(before[n], p) for n, p in trainer.named),
                              all(torch.equal(x, y) for x, y in zip(ema, trainer.ema.shadow)))
        return r

    trainer.train_step = watch
    assert trainer.run() == "finished"
    m = metrics(out)
    assert [m[s]["nonfinite"] for s in range(1, 6)] == [False, True, True, False, False]
    assert seen[2] == seen[3] == (True, True)  # skipped: weights and EMA untouched
    assert seen[1] == seen[4] == (False, False)
    assert {float(v["step"]) for v in trainer.optimizer.state.values()} == {3.0}  # AdamW counted good steps only
    assert trainer.nonfinite_total == 2

    # no checkpoint inside the NaN streak; resuming from step 4 goes on exactly as the run did
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-00000001", "step-00000004",
                                                                            "step-00000005"]
    shutil.rmtree(out / "checkpoints/step-00000005")
    (out / "checkpoints/latest").write_text("step-00000004\n")
    resumed = Trainer(cfg)
    assert resumed.step == 4 and resumed.run() == "finished"
    m2 = metrics(out)
    assert m2[5]["loss"] == pytest.approx(m[5]["loss"], rel=1e-6)
    final = read_tensors(out / "checkpoints/step-00000005", "trainable")
    assert all(torch.allclose(final[n], p.detach().float()) for n, p in trainer.named)


def test_cuda_graph_settings_that_cannot_work_are_refused(tmp_path):
    base = [*FAST, f"train.output_dir={_q(tmp_path)}", "train.cuda_graph=true"]
    with pytest.raises(UserError, match="grad_accum=1"):
        load_config("video_256", [*base, "train.grad_accum=2"])
    with pytest.raises(UserError, match="one process"):
        load_config("video_256", [*base, "parallel.strategy=ddp"])
    with pytest.raises(UserError, match="cuda_graph_warmup"):
        load_config("video_256", [*base, "train.cuda_graph_warmup=0"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="recording a CUDA graph needs a GPU")
@pytest.mark.parametrize("stage", list(STAGES))
def test_recorded_steps_train_like_the_ordinary_step_on_a_gpu(tmp_path, micro_model_dir, stage):
    gpu = ("train.device=cuda", "train.precision=fp32", "train.max_steps=6", "train.compile=blocks")
    a, b, graphed = _run_pair(tmp_path, stage, *_stage_args(stage, micro_model_dir, *gpu))
    assert graphed.graphed.recorded  # step 1 ran eagerly, step 2 recorded, steps 2..6 were replays
    for s in a:
        assert b[s]["loss"] == pytest.approx(a[s]["loss"], rel=1e-3), s
    for plain, recorded in _weights(tmp_path, 6, stems=("trainable",)):
        _close(plain, recorded, atol=1e-4)
