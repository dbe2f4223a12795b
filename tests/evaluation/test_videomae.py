"""Content-debiased FVD: our VideoMAE features against cd-fvd's own VideoMAE-v2 network and preprocessing, on
real mp4 files, through a checkpoint file, a converted transformers folder and `emu-video evaluate`.

cd-fvd's `preprocess_videomae` lives in a module that imports torchvision (absent from CPU-only installs); its
three steps (to float in [0, 1], channels first, `F.interpolate` bilinear to 224x224 on the (3, T, H, W) tensor)
are written out below as it has them. Its network (`videomaev2_finetune.VisionTransformer`) is imported directly.
"""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch

from emu_video.cli.main import main
from emu_video.errors import UserError
from emu_video.evaluation.features import extract
from emu_video.evaluation.frechet import FeatureStats, frechet_from_stats
from emu_video.evaluation.videomae import load_videomae, videomae_preprocess
from emu_video.evaluation.videos import list_videos, sample_clip
from emu_video.io.video import write_video

finetune = pytest.importorskip("cdfvd.third_party.VideoMAEv2.videomaev2_finetune")


def _clips(folder, n, seed, size=(40, 56)):
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.integers(0, 256, (1, *size, 3))
        frames = np.clip(base + np.arange(16)[:, None, None, None] * rng.integers(-6, 7), 0, 255).astype(np.uint8)
        write_video(folder / f"{i:02d}.mp4", frames, 8)
    return folder


def _cdfvd_preprocess(clips: np.ndarray) -> torch.Tensor:
    """cd-fvd's preprocess_videomae on (B, T, H, W, 3) uint8."""
    out = []
    for vid in torch.from_numpy(clips):
        x = vid.permute(3, 0, 1, 2).to(torch.float32) / 255
        out.append(torch.nn.functional.interpolate(x, size=(224, 224), scale_factor=None, mode="bilinear",
                                                   align_corners=False))
    return torch.stack(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A small VideoMAE-v2 ViT of cd-fvd's code (random weights, every parameter moved off its init), saved as a
    checkpoint like vit_g_hybrid_pt_1200e_ssv2_ft.pth ({"module": state})."""
    torch.manual_seed(0)
    ref = finetune.VisionTransformer(img_size=224, patch_size=32, embed_dim=128, depth=2, num_heads=2,
                                     mlp_ratio=2.0, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                     num_classes=7, all_frames=16, tubelet_size=2, use_mean_pooling=True).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    root = tmp_path_factory.mktemp("videomae")
    torch.save({"module": ref.state_dict()}, root / "videomae_v2.pth")
    return ref, root


def test_features_match_cd_fvd_from_checkpoint_and_folder(reference, tmp_path):
    ref, root = reference
    paths = list_videos(_clips(tmp_path / "v", 3, 0))
    with torch.no_grad():
        expected = ref.forward_features(_cdfvd_preprocess(np.stack([sample_clip(p, 16) for p in paths]))).numpy()
    net = load_videomae(root / "videomae_v2.pth")
    ours = extract(paths, net, videomae_preprocess, 16, batch_size=2, progress=False)
    assert ours.shape == (3, 128)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)

    net.model.model.save_pretrained(root / "folder")  # the converted network as a transformers folder
    again = extract(paths, load_videomae(root / "folder"), videomae_preprocess, 16, progress=False)
    np.testing.assert_allclose(again, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(UserError, match="exactly 16 frames"):
        extract(paths, net, videomae_preprocess, 9, progress=False)


def test_plain_videomae_model_folder_gives_the_token_mean(tmp_path):
    from transformers import VideoMAEConfig, VideoMAEModel

    torch.manual_seed(1)
    cfg = VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                         num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    VideoMAEModel(cfg).save_pretrained(tmp_path / "plain")
    model = VideoMAEModel.from_pretrained(tmp_path / "plain").eval()
    paths = list_videos(_clips(tmp_path / "v", 2, 3, size=(32, 32)))
    net = load_videomae(tmp_path / "plain")
    ours = extract(paths, net, partial(videomae_preprocess, size=net.input_size), 4, progress=False)
    clips = np.stack([sample_clip(p, 4) for p in paths])
    pixels = torch.from_numpy(clips).float().div(255).permute(0, 1, 4, 2, 3)  # (B, T, 3, H, W), already 32 px
    with torch.no_grad():
        expected = model(pixel_values=pixels).last_hidden_state.mean(dim=1).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_evaluate_cdfvd(reference, tmp_path, capsys):
    ref, root = reference
    real, fake = _clips(tmp_path / "real", 3, 0), _clips(tmp_path / "fake", 3, 1)
    out = tmp_path / "r.json"
    argv = ["evaluate", "--real", str(real), "--fake", str(fake), "--metrics", "cdfvd", "--videomae",
            str(root / "videomae_v2.pth"), "--no-plot", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())

    def stats(folder):
        clips = np.stack([sample_clip(p, 16) for p in list_videos(folder)])
        with torch.no_grad():
            feats = ref.forward_features(_cdfvd_preprocess(clips)).double().numpy()
        s = FeatureStats()
        s.add(feats)
        return s

    assert report["folders"]["fake"]["cdfvd"] == pytest.approx(frechet_from_stats(stats(real), stats(fake)), rel=1e-3)
    assert {v["status"] for v in report["feature_cache"].values()} == {"computed"}
    assert main(argv) == 0
    assert {v["status"] for v in json.loads(out.read_text())["feature_cache"].values()} == {"reused"}
    capsys.readouterr()
    assert main(argv + ["--frames", "9"]) == 2
    assert "exactly 16 frames" in capsys.readouterr().err
    assert main(["evaluate", "--real", str(real), "--fake", str(fake), "--metrics", "cdfvd", "--out",
                 str(tmp_path / "x.json")]) == 2
    assert "vit_g_hybrid_pt_1200e_ssv2_ft.pth" in capsys.readouterr().err
