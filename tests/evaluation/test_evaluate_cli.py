"""`emu-video evaluate` end to end on real mp4 folders: every metric, several fake folders, JSON + PNG report."""

from __future__ import annotations

import json

import builders
import pytest
import torch

from emu_video.cli.main import main
from emu_video.io.video import write_image, write_video
from emu_video.shapes.evalsets import load_eval_set
from emu_video.shapes.grammar import scene_from_prompt
from emu_video.shapes.render import render

N = 10  # IS uses 10 splits
FRAMES = range(0, 64, 4)  # 16 frames per clip


class _TinyC3d(torch.nn.Module):
    """Stands in for StyleGAN-V's c3d_ucf101.pt: (B, 3, 16, H, W) in [0, 255] -> 101 class probabilities."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 101, (4, 8, 8), stride=(4, 8, 8))

    def forward(self, x: torch.Tensor):
        return (self.conv(x / 64.0).mean(dim=(2, 3, 4))).softmax(dim=1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    items = list(load_eval_set("eval-seen"))[:N]
    lines = []
    for i, item in enumerate(items):
        name = f"{i:04d}.mp4"
        clip = render(scene_from_prompt(item.prompt, item.seed), FRAMES)
        write_image(root / "images" / f"{i:04d}.png", clip[0])  # the conditioning image, for i2v
        lines.append(json.dumps({"file": name, "prompt": item.prompt, "image": f"images/{i:04d}.png"}))
        write_video(root / "real" / name, clip, 4)
        write_video(root / "good" / name, render(scene_from_prompt(item.prompt, item.seed + 100), FRAMES), 4)
        other = items[(i + 3) % N].prompt  # another prompt's clip: the judge must see the mismatch
        write_video(root / "bad" / name, render(scene_from_prompt(other, item.seed), FRAMES), 4)
    (root / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    builders.write_tiny_i3d(root / "i3d_torchscript.pt", seed=0)  # the C3D's weights follow from the same seed
    torch.jit.script(_TinyC3d()).save(str(root / "c3d_ucf101.pt"))
    builders.write_tiny_clip(root / "clip")
    return root


def test_all_metrics_two_fake_folders_json_and_png(setup, capsys):
    out = setup / "report" / "eval.json"
    code = main(["evaluate", "--real", str(setup / "real"), "--fake", str(setup / "good"), "--fake",
                 str(setup / "bad"), "--metrics", "fvd,is,clipsim,i2v,flicker,motion,motion_vectors,judge",
                 "--i3d", str(setup / "i3d_torchscript.pt"), "--c3d", str(setup / "c3d_ucf101.pt"),
                 "--clip", str(setup / "clip"), "--prompts", str(setup / "prompts.jsonl"), "--batch-size", "4",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "good" in printed and "bad" in printed and "fvd" in printed
    report = json.loads(out.read_text())
    assert report["settings"]["i3d_format"] == "i3d-torchscript"
    real, good, bad = (report["folders"][k] for k in ("real", "good", "bad"))
    assert real["num_videos"] == good["num_videos"] == N
    assert "fvd" not in real and good["fvd"] > 0 and bad["fvd"] > 0
    assert 1.0 <= good["is"] <= 101 and good["is_std"] >= 0
    for s in (good, bad):
        assert -1 <= s["clipsim"] <= 1 and s["text_consistency"] == pytest.approx(100 * s["clipsim"])
        assert -100 <= s["image_similarity"] <= 100 and s["frame_consistency"] <= 100
        assert s["flicker"] >= 0 and s["motion"] > 0 and s["motion_vectors"] > 0
        assert set(s["per_video"]) == {f"{i:04d}.mp4" for i in range(N)}
    # The judge: renders of the right prompts are faithful, renders of other prompts mostly not.
    assert real["judge_faithful"] == 1.0 and good["judge_faithful"] == 1.0
    assert bad["judge_faithful"] < 0.5
    from PIL import Image

    with Image.open(out.with_suffix(".png")) as im:
        assert im.size[0] > 300


def test_missing_weight_file_is_one_line_naming_the_file(setup, capsys):
    code = main(["evaluate", "--real", str(setup / "real"), "--fake", str(setup / "good"), "--metrics", "fvd",
                 "--i3d", str(setup / "nope.pt"), "--out", str(setup / "x.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "nope.pt" in err and "i3d_pretrained_400.pt" in err and "i3d_torchscript.pt" in err
    assert not (setup / "x.json").exists()
    assert main(["evaluate", "--fake", str(setup / "good"), "--metrics", "fvd,bogus"]) == 2
    assert "unknown metric(s) bogus" in capsys.readouterr().err
