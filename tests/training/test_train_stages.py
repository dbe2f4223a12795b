"""Every packaged stage config trains a small model for a few steps on real mp4 / png files and writes a
model folder; chained, they take a folder of videos to a model the text-to-video pipeline runs."""

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from train_helpers import FAST, MICRO_UNET_OVERRIDES, metrics, run_stage

from emu_video.models import is_video_param
from emu_video.pipelines.components import ModelIndex


def _q(path) -> str:
    return json.dumps(str(path))


def _check_run(trainer, steps=2):
    out = trainer.out
    assert trainer.status == "finished" and trainer.step == steps
    m = metrics(out)
    assert sorted(m) == list(range(1, steps + 1)) and all(r["loss"] == r["loss"] for r in m.values())
    assert json.loads((out / "status.json").read_text())["state"] == "finished"
    assert (out / "checkpoints" / "latest").read_text().strip() == f"step-{steps:08d}"
    return out / "model"


def _keys(path):
    with safe_open(str(path), "pt") as f:
        return set(f.keys())


def test_chain_of_stages_from_videos_to_a_text_to_video_model(tmp_path, media_dir, micro_model_dir):
    videos, images = media_dir / "videos.jsonl", media_dir / "images.jsonl"

    ae = run_stage("autoencoder", tmp_path / "ae", f"data.manifest=[{_q(images)}, {_q(videos)}]",
                   "autoencoder.block_out_channels=[8, 16]", "autoencoder.layers_per_block=1",
                   "autoencoder.norm_num_groups=4", "autoencoder.latent_channels=4", "sample.every=2")
    vae = _check_run(ae) / "vae"
    assert json.loads((vae / "config.json").read_text())["scaling_factor"] > 0
    assert (tmp_path / "ae/samples/step-00000002.png").exists()

    encoder = micro_model_dir / "text_encoder"
    t2i = run_stage("text_to_image", tmp_path / "t2i", f"data.manifest={_q(images)}", "model.unet=tiny",
                    f"model.unet_overrides={MICRO_UNET_OVERRIDES}", f"model.vae={_q(vae)}",
                    f"model.text_encoders=[{{ path = {_q(encoder)}, tokenizer = {_q(micro_model_dir / 'tokenizer')}, "
                    "max_length = 12 }]")
    t2i_model = _check_run(t2i)
    assert all(not is_video_param(k) for k in _keys(tmp_path / "t2i/checkpoints/step-00000002/trainable.safetensors"))
    assert ModelIndex.load(t2i_model).text_encoders == [{"path": "text_encoder", "tokenizer": "tokenizer",
                                                         "max_length": 12}]

    v256 = run_stage("video_256", tmp_path / "v256", f"data.manifest={_q(videos)}", f"model.init={_q(t2i_model)}",
                     "data.num_frames=4")
    v256_model = _check_run(v256)
    trainable = _keys(tmp_path / "v256/checkpoints/step-00000002/trainable.safetensors")
    assert trainable and all(is_video_param(k) for k in trainable)  # frozen spatial weights are not re-saved
    assert "conv_in_cond.weight" in trainable

    v512 = run_stage("video_512", tmp_path / "v512", f"data.manifest={_q(videos)}", f"model.init={_q(v256_model)}",
                     "sample.every=2", "sample.steps=2", 'sample.prompts=["a red circle moves left"]')
    v512_model = _check_run(v512)
    index = ModelIndex.load(v512_model)
    video_schedule = index.layouts["first_frame"]["schedule"]
    assert video_schedule["prediction_type"] == "v_prediction" and video_schedule["zero_terminal_snr"]
    assert index.defaults["num_frames"] == 8 and index.defaults["fps"] == 4.0 and index.defaults["height"] == 16
    assert (tmp_path / "v512/samples/step-00000002-0.mp4").exists()

    interp = run_stage("interpolation", tmp_path / "interp", f"data.manifest={_q(videos)}",
                       f"model.init={_q(v512_model)}", "train.batch_size=1")
    final = _check_run(interp)
    index = ModelIndex.load(final)
    assert index.weight_files() == {"interpolation": "interpolation/temporal.safetensors"}
    assert index.layouts["interpolation"]["options"]["factor"] == 4
    assert index.layouts["first_frame"]["schedule"]["prediction_type"] == "v_prediction"

    from emu_video.pipelines import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(final)
    assert pipe.components.has_layout("interpolation")
    video = pipe("a blue square moves up", seed=0, num_inference_steps=1, interpolation_steps=1, progress=False)
    assert video.frames.shape == (37, 16, 16, 3) and video.fps == 16.0


@pytest.mark.parametrize("stage", ["video_512_16f", "video_hq", "text_to_image"])
def test_other_stage_configs_train_from_a_model_folder(tmp_path, media_dir, micro_model_dir, stage):
    manifest = media_dir / ("images.jsonl" if stage == "text_to_image" else "videos.jsonl")
    extra = ["train.gradient_checkpointing=true", "train.export_dtype=bfloat16"] if stage == "video_hq" else []
    trainer = run_stage(stage, tmp_path / stage, f"data.manifest={_q(manifest)}", f"model.init={_q(micro_model_dir)}",
                        "train.batch_size=1", *extra)
    model = _check_run(trainer)
    assert ModelIndex.load(model).unet == "unet" and (model / "unet/config.json").exists()
    if stage == "video_hq":
        assert trainer.optimizer.param_groups[0]["weight_decay"] == 1e-4
        assert trainer.task.core.gradient_checkpointing
        with safe_open(str(model / "unet/diffusion_pytorch_model.safetensors"), "pt") as f:
            assert f.get_tensor("conv_in.weight").dtype == torch.bfloat16
        from emu_video.pipelines.components import EmuVideoComponents

        assert EmuVideoComponents.from_pretrained(model).dtype == torch.float32


def test_export_command_rewrites_the_model_from_the_newest_checkpoint(tmp_path, media_dir, micro_model_dir, capsys):
    from emu_video.cli.main import main

    args = ["train", "--config", "video_256", *FAST, f"train.output_dir={_q(tmp_path / 'run')}",
            f"data.manifest={_q(media_dir / 'videos.jsonl')}", f"model.init={_q(micro_model_dir)}", "data.num_frames=4"]
    assert main(args[:3] + ["--export"] + args[3:]) == 2  # nothing to export yet
    assert main(args) == 0
    shutil.rmtree(tmp_path / "run/model")
    assert main(args[:3] + ["--export"] + args[3:]) == 0
    assert "step 2" in capsys.readouterr().out and (tmp_path / "run/model/model_index.json").exists()
    assert main(["train", "--list-stages"]) == 0 and "video_512_16f" in capsys.readouterr().out


def test_interpolation_continues_its_own_weights_on_the_tiny_model(tmp_path, media_dir, tiny_model_dir):
    from emu_video.models import VideoUNet
    from emu_video.models.serialization import read_safetensors

    trainer = run_stage("interpolation", tmp_path / "fi", f"data.manifest={_q(media_dir / 'videos.jsonl')}",
                        f"model.init={_q(tiny_model_dir)}", "model.temporal_init=interpolation", "train.batch_size=1",
                        "train.max_steps=1", "train.ema_decay=0")
    model = _check_run(trainer, steps=1)
    before = read_safetensors(tiny_model_dir / "interpolation/temporal.safetensors")
    after = read_safetensors(model / "interpolation/temporal.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # trained from I's weights ...
    assert max((before[k] - after[k]).abs().max() for k in before) < 1e-3  # ... one small step away
    f_weights = {k: v for k, v in VideoUNet.from_pretrained(model / "unet").state_dict().items() if k in before}
    original = {k: v for k, v in VideoUNet.from_pretrained(tiny_model_dir / "unet").state_dict().items() if k in before}
    assert all(torch.equal(f_weights[k], original[k]) for k in before)  # F is untouched


def test_clause_tokens_are_added_to_a_trained_model_and_kept(tmp_path, micro_model_dir):
    from emu_video.errors import UserError
    from emu_video.pipelines import TextToVideoPipeline
    from emu_video.pipelines.components import EmuVideoComponents

    common = ["data.source=\"shapes\"", "train.batch_size=1", "data.num_frames=4", "data.fps=4.0"]
    trainer = run_stage("video_256", tmp_path / "v", f"model.init={_q(micro_model_dir)}", "model.clause_tokens=2",
                        *common)
    model = _check_run(trainer)
    assert json.loads((model / "unet/config.json").read_text())["clause_tokens"] == 2
    assert {s["clause_tokens"] for s in ModelIndex.load(model).text_encoders} == {2}
    assert any(".attn_clause." in k for k in _keys(tmp_path / "v/checkpoints/step-00000002/trainable.safetensors"))
    video = TextToVideoPipeline.from_pretrained(model)("a red circle moves left and a blue square rises", seed=0,
                                                      num_inference_steps=1, progress=False)
    assert video.frames.shape[0] >= 4 and video.frames.shape[-1] == 3
    with pytest.raises(UserError, match="clause attention can be added"):
        run_stage("video_256", tmp_path / "v2", f"model.init={_q(model)}", "model.clause_tokens=1", *common)
    index = (model / "model_index.json")
    index.write_text(index.read_text().replace('"clause_tokens": 2', '"clause_tokens": 1'))
    with pytest.raises(UserError, match="clause token"):
        EmuVideoComponents.from_pretrained(model)


@pytest.mark.parametrize("stage", ["video_256", "text_to_image", "interpolation"])
def test_shapes_world_source_trains_without_files(tmp_path, micro_model_dir, stage):
    extra = ["data.num_frames=4", "data.fps=4.0"] if stage == "video_256" else []
    trainer = run_stage(stage, tmp_path / stage, "data.source=\"shapes\"", f"model.init={_q(micro_model_dir)}",
                        "train.batch_size=1", *extra)
    _check_run(trainer)


def test_compiled_unet_trains_like_the_eager_one(tmp_path, micro_model_dir):
    graphs = []

    def recording_backend(gm, example_inputs):
        graphs.append([tuple(t.shape) if isinstance(t, torch.Tensor) else t for t in example_inputs])
        return gm.forward

    torch._dynamo.reset()
    torch._dynamo.register_backend(recording_backend, name="emu_video_test_recording")
    common = ["data.source=\"shapes\"", f"model.init={_q(micro_model_dir)}", "train.batch_size=1",
              "data.num_frames=4", "data.fps=4.0"]
    run_stage("video_256", tmp_path / "eager", *common)
    compiled = run_stage("video_256", tmp_path / "compiled", *common, "train.compile=\"blocks\"",
                         "train.compile_backend=\"emu_video_test_recording\"", "train.channels_last=\"on\"")
    assert compiled.task.core.compile_mode == "blocks"
    vae = compiled.task.inputs.vae  # the live VAE encoder is compiled too, and then on channels-last frames
    assert vae.compiled and vae.memory_format == torch.channels_last
    # blocks of several shapes were compiled, each with static shapes (no symbolic sizes)
    assert len({str(g) for g in graphs}) > 1
    for inputs in graphs:
        for item in inputs:
            sizes = item if isinstance(item, tuple) else (item,)
            assert all(isinstance(v, int) for v in sizes if not isinstance(v, (float, bool))), inputs
    losses = [metrics(tmp_path / name) for name in ("eager", "compiled")]
    assert losses[0].keys() == losses[1].keys()
    for step in losses[0]:
        assert abs(losses[0][step]["loss"] - losses[1][step]["loss"]) < 1e-5


def test_shapes_world_autoencoder_trains_on_random_crops(tmp_path):
    from emu_video.models.autoencoder import FrameAutoencoder

    trainer = run_stage("autoencoder", tmp_path / "ae", "data.source=\"shapes\"", "data.resolution=64",
                        "autoencoder.crop=32", "autoencoder.foreground_weight=5.0",
                        "autoencoder.block_out_channels=[8, 16]", "autoencoder.layers_per_block=1", "autoencoder.norm_num_groups=4", "train.batch_size=2")
    model = _check_run(trainer)
    assert trainer.task._recent.shape == (2, 3, 32, 32)  # the loss saw crops ...
    ae = FrameAutoencoder.from_pretrained(model / "vae")
    assert ae.encode(torch.zeros(1, 3, 64, 64)).shape[-2:] == (32, 32)  # ... the model takes whole frames


def test_random_crops_are_slices_of_their_own_image():
    from emu_video.training.task_autoencoder import random_crops
    from emu_video.training.train_state import SampleRandom

    x = torch.arange(4 * 3 * 16 * 16, dtype=torch.float32).reshape(4, 3, 16, 16)
    g = SampleRandom(0, 1, [5, 9])  # two clips of two frames each
    crops = random_crops(x, 8, g)
    assert crops.shape == (4, 3, 8, 8)
    for i in range(4):
        t, l = divmod(int(crops[i, 0, 0, 0] - x[i, 0, 0, 0]), 16)
        assert torch.equal(crops[i], x[i, :, t : t + 8, l : l + 8])
    assert random_crops(x, 0, g) is x and random_crops(x, 16, g) is x


def test_foreground_weights_mark_what_differs_from_the_background():
    from emu_video.training.task_autoencoder import foreground_weights

    x = torch.full((2, 3, 8, 8), -0.5)
    x[0, :, 2:4, 2:4] = 0.8  # a 2x2 object on the first image, the second is empty
    w = foreground_weights(x, 9.0)
    assert w.shape == (2, 1, 8, 8) and w[0, 0, 2:4, 2:4].eq(10).all() and w.sum() == 2 * 64 + 9 * 4
    assert foreground_weights(x, 0.0) is None
