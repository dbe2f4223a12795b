import pytest

from emu_video.errors import UserError
from emu_video.training.config import load_config, packaged_stages

REQUIRED = ["data.manifest=d.jsonl", "model.init=m"]


def test_every_packaged_stage_loads_with_the_paper_settings():
    assert set(packaged_stages()) == {"autoencoder", "text_to_image", "video_256", "video_512", "video_512_16f",
                                      "video_hq", "interpolation"}
    c = {s: load_config(s, REQUIRED) for s in packaged_stages()}
    v256, v512, v16, hq, fi = c["video_256"], c["video_512"], c["video_512_16f"], c["video_hq"], c["interpolation"]
    assert (v256.data.resolution, v256.data.num_frames, v256.data.fps) == (256, 8, 8.0)
    assert (v256.diffusion.prediction_type, v256.diffusion.zero_terminal_snr) == ("epsilon", False)
    assert v256.train.max_steps == 70000 and v256.train.global_batch_size == 512
    assert (v512.data.resolution, v512.data.num_frames, v512.data.fps) == (512, 8, 4.0)
    assert (v512.diffusion.prediction_type, v512.diffusion.zero_terminal_snr) == ("v_prediction", True)
    assert v512.train.max_steps == 15000 and v16.train.max_steps == 25000 and v16.data.num_frames == 16
    for cfg in (v256, v512, v16):
        assert (cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.weight_decay) == (1e-4, 1000, 0.0)
        assert cfg.optim.betas == [0.9, 0.999]
    assert (hq.optim.lr, hq.optim.warmup_steps, hq.optim.weight_decay, hq.train.global_batch_size) == (
        2.5e-5, 10000, 1e-4, 64)
    assert (fi.optim.lr, fi.optim.warmup_steps, fi.train.global_batch_size) == (1.5e-4, 1500, 384)
    assert (fi.data.num_frames, fi.data.fps, fi.layout["noise_aug_max"]) == (37, 16.0, 250)
    assert c["autoencoder"].autoencoder.latent_channels == 8
    # Each stage starts from the previous stage's output.
    assert v256.model.init == "m"
    assert load_config("video_512", ["data.manifest=d.jsonl"]).model.init == "runs/video_256/model"
    assert load_config("interpolation", ["data.manifest=d.jsonl"]).model.init == "runs/video_hq/model"


def test_overrides_are_typed():
    cfg = load_config("video_256", REQUIRED + ["optim.lr=3e-5", "train.max_steps=10", "data.fps=4",
                                               "train.gradient_checkpointing=true", "sample.prompts=a cat"])
    assert cfg.optim.lr == 3e-5 and cfg.train.max_steps == 10 and cfg.data.fps == 4.0
    assert cfg.train.gradient_checkpointing is True and cfg.sample.prompts == ["a cat"]
    assert cfg.data.manifest == ["d.jsonl"]


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "did you mean 'lr'"),
    ("train.max_steps=many", "must be an integer"),
    ("data.num_frames=8", "set data.num_frames=37"),
    ("train.precision=fp16", "choose one of"),
    ("diffusion.prediction_type=epsilon", "zero_terminal_snr"),
    ("dropout.p_text=0.9", "p_text"),
    ("nonsense", "key=value"),
    ("shapes.image_two_objects=1.5", "shares"),
    ("train.compile_memory_budget=0.5", "needs train.compile"),
    ("train.compile_memory_budget=2.0", "must be in"),
    ("optim.lr=-1", r"^optim\.lr must be positive, got -1\.0$"),
    ("data.fps=0", r"^data\.fps must be positive, got 0\.0$"),
    ("optim.lr=nan", r"^optim\.lr must be a finite number, got nan$"),
    ("optim.grad_clip=nan", r"^optim\.grad_clip must be a finite number, got nan$"),
    ("train.max_minutes=inf", r"^train\.max_minutes must be a finite number, got inf$"),
    ("optim.betas=[0.9, nan]", r"^optim\.betas must be a finite number"),
])
def test_bad_settings_fail_with_clear_messages(override, message):
    with pytest.raises(UserError, match=message):
        load_config("interpolation", REQUIRED + [override])


def test_autoencoder_crop_must_fit_the_downscale():
    with pytest.raises(UserError, match="autoencoder.crop"):
        load_config("autoencoder", ["data.manifest=x.jsonl", "train.output_dir=o", "autoencoder.crop=20"])


def test_missing_data_and_model(tmp_path):
    with pytest.raises(UserError, match="no training data"):
        load_config("video_256", ["model.init=m"])
    with pytest.raises(UserError, match="model.unet, model.vae"):
        load_config("text_to_image", ["data.manifest=d.jsonl"])
    with pytest.raises(UserError, match="no packaged stage"):
        load_config("video_999")


def test_printed_config_reloads_identically_and_files_extend_stages(tmp_path):
    cfg = load_config("video_hq", REQUIRED + ["train.seed=3"])
    path = tmp_path / "hq.toml"
    path.write_text(cfg.to_toml())
    assert load_config(str(path)) == cfg
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "video_512_16f"\n[data]\nresolution = 64\nmanifest = ["v.jsonl"]\n')
    c = load_config(str(mine), ["model.init=m"])
    assert (c.data.resolution, c.data.num_frames, c.diffusion.prediction_type) == (64, 16, "v_prediction")


def test_repository_stage_configs_load():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "configs" / "stages" / "shapes_world"
    files = sorted(folder.glob("*.toml"))
    assert {f.stem for f in files} == {"autoencoder", "text_to_image", "video_64", "video_128", "interpolation",
                                       "extension", "keyframes", "lora_new_word"}
    cfgs = {f.stem: load_config(str(f)) for f in files}
    assert (cfgs["video_64"].data.resolution, cfgs["video_64"].data.num_frames, cfgs["video_64"].data.fps) == (
        64, 16, 4.0)
    assert cfgs["video_128"].diffusion.prediction_type == "v_prediction"
    assert (cfgs["interpolation"].data.num_frames, cfgs["interpolation"].data.fps) == (37, 16.0)
    assert all(c.train.max_file_mib <= 16 and 0 < c.train.max_minutes <= 10 for c in cfgs.values())
    assert cfgs["text_to_image"].shapes.image_motion_captions > 0
    assert cfgs["extension"].conditioning_layout().positions(16) == [0, 1, 2, 3]
    assert cfgs["keyframes"].conditioning_layout().positions(16) == [0, 15]
    assert cfgs["extension"].shapes.motion_change == 0.5 and cfgs["keyframes"].shapes.motion_change == 0
    with pytest.raises(UserError, match="motion_change is for extension stages"):
        load_config(str(folder / "keyframes.toml"), ["shapes.motion_change=0.5"])
    from emu_video.training.data_setup import pixel_dataset

    for stage, share in (("text_to_image", cfgs["text_to_image"].shapes.image_two_objects),
                         ("video_128", cfgs["video_128"].shapes.video_two_objects)):
        ds = pixel_dataset(cfgs[stage])
        assert ds.two_object_fraction == share and share != 0.25


def test_a_config_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_bytes(b'extends = "video_256"\n# caf\xe9\n')
    with pytest.raises(UserError, match=r"mine.toml: not UTF-8 text .* at byte 27"):
        load_config(str(path), REQUIRED)
