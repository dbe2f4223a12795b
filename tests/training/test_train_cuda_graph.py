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


def _args(media_dir, model_dir, *extra):
    data = "data.source=shapes" if media_dir is None else f"data.manifest={json.dumps(str(media_dir / 'videos.jsonl'))}"
    return (data, f"model.init={json.dumps(str(model_dir))}", "data.num_frames=4", "optim.warmup_steps=3",
            "train.checkpoint_every=100", *extra)


def _close(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k, value in a.items():
        torch.testing.assert_close(value, b[k], atol=atol, rtol=0, msg=k)


def _run_pair(tmp_path, media_dir, model_dir, stage, *extra):
    plain = run_stage(stage, tmp_path / "plain", *_args(media_dir, model_dir, *extra))
    graphed = run_stage(stage, tmp_path / "graphed", *_args(media_dir, model_dir, *extra), "train.cuda_graph=true",
                        "train.cuda_graph_warmup=1")
    assert plain.graphed is None and graphed.graphed is not None
    return plain, graphed


@pytest.mark.parametrize("stage, extra", [
    ("video_256", ()),
    # 2 known frames, one new frame between them and one before and after: 5 frames; noise augmentation on
    ("interpolation", ("interpolation.input_frames=2", "interpolation.factor=2", "interpolation.pad=1",
                       "data.num_frames=5")),
])
def test_device_side_step_trains_like_the_ordinary_step(tmp_path, media_dir, micro_model_dir, stage, extra):
    _, graphed = _run_pair(tmp_path, media_dir, micro_model_dir, stage, "train.max_steps=4", *extra)
    a, b = metrics(tmp_path / "plain"), metrics(tmp_path / "graphed")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    for s in a:
        assert a[s]["lr"] == b[s]["lr"]  # the warm-up reaches the tensor learning rate
        assert b[s]["loss"] == pytest.approx(a[s]["loss"], rel=1e-5, abs=1e-7), s
        assert b[s]["grad_norm"] == pytest.approx(a[s]["grad_norm"], rel=1e-4), s
    for stem in ("trainable", "ema"):
        _close(read_tensors(tmp_path / "plain/checkpoints/step-00000004", stem),
               read_tensors(tmp_path / "graphed/checkpoints/step-00000004", stem), atol=2e-6)
    steps = {float(v["step"]) for v in graphed.optimizer.state.values()}
    assert steps == {4.0}


def test_device_side_step_skips_nan_steps_and_resumes(tmp_path, media_dir, micro_model_dir):
    out = tmp_path / "run"
    cfg = load_config("video_256", [*FAST, f"train.output_dir={json.dumps(str(out))}",
                                    *_args(media_dir, micro_model_dir, "train.max_steps=5", "train.checkpoint_every=1",
                                           "train.max_nonfinite_steps=3", "train.cuda_graph=true")])
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
    base = [*FAST, f"train.output_dir={json.dumps(str(tmp_path))}", "train.cuda_graph=true"]
    with pytest.raises(UserError, match="grad_accum=1"):
        load_config("video_256", [*base, "train.grad_accum=2"])
    with pytest.raises(UserError, match="one process"):
        load_config("video_256", [*base, "parallel.strategy=ddp"])
    with pytest.raises(UserError, match="cuda_graph_warmup"):
        load_config("video_256", [*base, "train.cuda_graph_warmup=0"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="recording a CUDA graph needs a GPU")
def test_recorded_steps_train_like_the_ordinary_step_on_a_gpu(tmp_path, micro_model_dir):
    gpu = ("train.device=cuda", "train.precision=fp32", "train.max_steps=6", "train.compile=blocks")
    _, graphed = _run_pair(tmp_path, None, micro_model_dir, "video_256", *gpu)  # Shapes World clips
    assert graphed.graphed.recorded  # steps 3..6 were replays
    a, b = metrics(tmp_path / "plain"), metrics(tmp_path / "graphed")
    for s in a:
        assert b[s]["loss"] == pytest.approx(a[s]["loss"], rel=1e-3), s
    _close(read_tensors(tmp_path / "plain/checkpoints/step-00000006", "trainable"),
           read_tensors(tmp_path / "graphed/checkpoints/step-00000006", "trainable"), atol=1e-4)
