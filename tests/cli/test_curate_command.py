"""`emu-video curate` from the command line, with worker processes, a tiny random CLIP model and aesthetic
predictor: the scores in the report are the reference ones (transformers' CLIPProcessor + CLIPModel), and
filters whose weights are missing are off with one line, or an error when asked for."""

import json

import pytest
import torch
from builders import write_tiny_clip
from curation_media import panning, write
from media_helpers import write_corrupt_video, write_manifest_lines

pytest.importorskip("scenedetect")
pytest.importorskip("imagehash")

from emu_video.cli.main import main  # noqa: E402
from emu_video.io.video import read_video  # noqa: E402

SMALL = ["--min-seconds", "1", "--min-side", "32", "--no-progress"]


@pytest.fixture
def manifest(tmp_path):
    root = tmp_path / "data"
    write(root / "moving.mp4", panning(24, 64, step=2, seed=1))
    write(root / "still.mp4", panning(24, 64, step=0, seed=2))
    write_corrupt_video(root / "broken.mp4")
    return write_manifest_lines(root / "videos.jsonl", [
        {"path": "moving.mp4", "caption": "a red pan"}, {"path": "still.mp4", "caption": "a still wall"},
        {"path": "broken.mp4", "caption": "broken"}])


def _reference_scores(clip_dir, frame, caption, mlp_state):
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)
    inputs = processor(text=[caption], images=[Image.fromarray(frame)], return_tensors="pt", padding=True)
    with torch.no_grad():
        img = model.get_image_features(pixel_values=inputs["pixel_values"])
        txt = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    img, txt = [t if isinstance(t, torch.Tensor) else t.pooler_output for t in (img, txt)]
    img, txt = img / img.norm(dim=-1, keepdim=True), txt / txt.norm(dim=-1, keepdim=True)
    x = img
    for i in (0, 2, 4, 6, 7):
        x = torch.nn.functional.linear(x, mlp_state[f"layers.{i}.weight"], mlp_state[f"layers.{i}.bias"])
    return float((img * txt).sum()), float(x)


def test_curate_with_workers_clip_and_aesthetic_scores(tmp_path, manifest, capsys):
    clip_dir = write_tiny_clip(tmp_path / "clip")
    torch.manual_seed(0)
    sizes = {0: (1024, 16), 2: (128, 1024), 4: (64, 128), 6: (16, 64), 7: (1, 16)}
    state = {}
    for i, (o, n) in sizes.items():
        state[f"layers.{i}.weight"], state[f"layers.{i}.bias"] = torch.randn(o, n) / n**0.5, torch.randn(o)
    torch.save(state, tmp_path / "aesthetic.pth")
    out = tmp_path / "curated"
    args = ["curate", str(manifest), "--out", str(out), "--workers", "1", "--clip", str(clip_dir),
            "--aesthetic", str(tmp_path / "aesthetic.pth"), "--min-clip-score", "-1", "--min-aesthetic", "-100",
            *SMALL]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "kept 1 of 2 clips from 3 files" in printed.out and "unreadable: " in printed.out
    assert "filter off" not in printed.err
    report = json.loads((out / "report.json").read_text())
    assert [u["path"].endswith("broken.mp4") for u in report["unreadable"]] == [True]
    for clip in report["clips"]:
        frame = read_video(clip["path"], max_frames=1).frames[0]
        caption = "a red pan" if clip["path"].endswith("moving.mp4") else "a still wall"
        ref_clip, ref_aesthetic = _reference_scores(clip_dir, frame, caption, state)
        assert clip["clip_score"] == pytest.approx(ref_clip, abs=2e-3)
        assert clip["aesthetic"] == pytest.approx(ref_aesthetic, abs=2e-3)
    assert {p.name for p in (out / "plots").iterdir()} >= {"clip_score.png", "aesthetic.png", "motion_vectors.png"}
    # a rerun measures nothing again
    assert main(args) == 0 and "(3 already measured)" in capsys.readouterr().out


def test_missing_weights_turn_a_filter_off_or_fail_when_asked_for(tmp_path, manifest, capsys):
    out = str(tmp_path / "curated")
    assert main(["curate", str(manifest), "--out", out, "--workers", "0", *SMALL]) == 0
    err = capsys.readouterr().err
    assert "CLIP score filter off" in err and "aesthetic filter off" in err
    assert main(["curate", str(manifest), "--out", out, "--clip", str(tmp_path / "nope"), *SMALL]) == 2
    assert "CLIP model not found" in capsys.readouterr().err
    assert main(["curate", str(manifest), "--out", out, "--min-clip-score", "0.3", *SMALL]) == 2
    assert "--min-clip-score needs a CLIP model" in capsys.readouterr().err
    assert main(["curate", str(tmp_path / "none.jsonl"), "--out", out]) == 2
