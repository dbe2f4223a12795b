"""LoRA adapters at sampling time: `--lora DIR --lora-scale S` (several) gives the video of the folder that
`emu-video merge-lora` writes, scale 0 gives the base model's, and the fast paths run on merged weights."""

import numpy as np
import pytest
import torch

pytest.importorskip("peft")

from emu_video.cli.main import main  # noqa: E402
from emu_video.io.video import read_video  # noqa: E402
from emu_video.models import VideoUNet  # noqa: E402
from emu_video.models.lora import Adapter, adapter_tensors, add_adapter, lora_config  # noqa: E402
from emu_video.pipelines.components import EmuVideoComponents  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_adapter(model_dir, folder, targets, layout, seed):
    unet = VideoUNet.from_pretrained(model_dir / "unet")
    cfg = lora_config(unet, 2, 4.0, targets)
    torch.manual_seed(seed)
    with torch.no_grad():
        for _, p in add_adapter(unet, cfg):
            p.copy_(torch.randn_like(p) * 0.2)
    return Adapter(cfg, adapter_tensors(unet), {"emu_video.layout": layout}).save(folder)


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return (_random_adapter(tiny_model_dir, root / "video", "both", "first_frame", 0),
            _random_adapter(tiny_model_dir, root / "interp", "temporal", "interpolation", 1))


def _generate(tiny_model_dir, out, *extra):
    assert main(["generate", "a red circle moves left", "--model", str(tiny_model_dir), "--out", str(out),
                 "--frames", "8", "--steps", "1", "--interp-steps", "1", "--quiet", "--threads", "1", *extra]) == 0
    return read_video(out).frames


def test_lora_flags_match_the_merged_folder_and_scale_zero_matches_the_base(tiny_model_dir, adapters, tmp_path):
    video, interp = adapters
    lora = ["--lora", str(video), "--lora-scale", "0.8", "--lora", str(interp)]  # the second one at scale 1
    with_flags = _generate(tiny_model_dir, tmp_path / "flags.mp4", *lora)
    assert main(["merge-lora", str(tiny_model_dir), str(video), str(interp), "--scale", "0.8",
                 "--out", str(tmp_path / "merged")]) == 0
    merged = _generate(tmp_path / "merged", tmp_path / "merged.mp4")
    assert np.array_equal(with_flags, merged)
    base = _generate(tiny_model_dir, tmp_path / "base.mp4")
    assert not np.array_equal(with_flags, base)
    off = _generate(tiny_model_dir, tmp_path / "off.mp4", "--lora", str(video), "--lora-scale", "0",
                    "--lora", str(interp), "--lora-scale", "0")
    assert np.array_equal(off, base)


def test_each_adapter_changes_only_its_own_layout(tiny_model_dir, adapters):
    video, interp = adapters
    base = EmuVideoComponents.from_pretrained(tiny_model_dir)
    only_interp = EmuVideoComponents.from_pretrained(tiny_model_dir, lora=[(interp, 1.0)])
    assert all(torch.equal(a, b) for a, b in zip(base.unet.state_dict().values(), only_interp.unet.state_dict().values()))
    changed = [k for k, v in base.temporal_weights["interpolation"].items()
               if not torch.equal(v, only_interp.temporal_weights["interpolation"][k])]
    assert changed
    only_video = EmuVideoComponents.from_pretrained(tiny_model_dir, lora=[(video, 1.0)])
    for k, v in base.temporal_weights["interpolation"].items():
        assert torch.equal(v, only_video.temporal_weights["interpolation"][k])


def test_fast_paths_on_merged_weights_match_the_reference(tiny_model_dir, adapters):
    comps = EmuVideoComponents.from_pretrained(tiny_model_dir, lora=[(adapters[0], 1.0)])
    unet = comps.unet
    g = torch.Generator().manual_seed(0)
    x, ctx = torch.randn(1, 9, 8, 4, 4, generator=g), [c[:1] for c in comps.encode_prompts(["a red circle"])]
    with torch.no_grad():
        reference = unet.set_fast_paths(False)(x, torch.tensor([500]), ctx)
        comps.optimize_for_inference(compile="none", cuda_graphs=False)
        fast = unet(x, torch.tensor([500]), ctx)
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-5)


def test_bad_lora_arguments_are_one_line_errors(tiny_model_dir, adapters, tmp_path, capsys):
    args = ["generate", "a red circle", "--model", str(tiny_model_dir), "--out", str(tmp_path / "x.mp4"), "--quiet"]
    assert main([*args, "--lora", str(adapters[0]), "--lora-scale", "1", "--lora-scale", "2"]) == 2
    assert "2 --lora-scale values for 1 --lora" in capsys.readouterr().err
    assert main([*args, "--lora", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
