import json

import torch

from emu_video.cli.main import main
from emu_video.pipelines.components import EmuVideoComponents


def test_describe_prints_counts_for_every_preset(capsys):
    for name in ("paper", "sd15", "tiny"):
        assert main(["describe", "--config", name]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["total_params"] == out["spatial_params"] + out["temporal_params"]
        assert out["temporal_params"] > 0
    main(["describe", "--config", "paper"])
    paper = json.loads(capsys.readouterr().out)
    assert 2.565e9 <= paper["spatial_params"] <= 2.835e9
    assert 1.615e9 <= paper["temporal_params"] <= 1.785e9
    assert 4.085e9 <= paper["total_params"] <= 4.515e9
    assert paper["in_channels"] == 17


def test_describe_unknown_config_is_one_line_error(capsys):
    assert main(["describe", "--config", "huge"]) == 2
    err = capsys.readouterr().err
    assert "unknown configuration" in err and "Traceback" not in err


def test_init_from_diffusers_folder_equals_the_image_model(tiny_sd_dir, tmp_path):
    from diffusers import UNet2DConditionModel

    out = tmp_path / "video_model"
    assert main(["init", "--from-diffusers", str(tiny_sd_dir), "--out", str(out)]) == 0
    comps = EmuVideoComponents.from_pretrained(out)
    ref = UNet2DConditionModel.from_pretrained(tiny_sd_dir / "unet").eval()
    x = torch.randn(1, 4, 8, 16, 16)
    ctx = comps.encode_prompts(["a red circle moves left"])
    with torch.no_grad():
        ours = comps.unet(x, 250, ctx)
        theirs = torch.stack([ref(x[:, :, i], 250, encoder_hidden_states=ctx[0]).sample for i in range(8)], 2)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    # refuses to overwrite, and explains what is missing
    assert main(["init", "--from-diffusers", str(tiny_sd_dir), "--out", str(out)]) == 2
    assert main(["init", "--from-diffusers", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2


def test_describe_model_lists_its_layouts(tiny_model_dir, capsys):
    assert main(["describe", "--model", str(tiny_model_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layouts"]["first_frame"]["weights"].startswith("unet")
    assert out["layouts"]["interpolation"]["weights"] == "interpolation/temporal.safetensors"
    assert out["layouts"]["direct"]["weights"].startswith("none of its own")
    assert out["defaults"]["sampler"] == "ddim" and out["total_params"] > 0
