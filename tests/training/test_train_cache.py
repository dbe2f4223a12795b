"""prepare-data: manifests from a folder, tar shards, and latent caches that training reads without ever
loading the autoencoder or the text encoders."""

import json
import shutil

import pytest
import torch
from train_helpers import run_stage

from emu_video.cli.main import main
from emu_video.data.cache import CachedDataset
from emu_video.models.autoencoder import FrameAutoencoder
from emu_video.models.text_encoder import TextEncoder


@pytest.fixture
def clip_folder(tmp_path, media_dir):
    folder = tmp_path / "clips"
    folder.mkdir()
    for row in (json.loads(line) for line in (media_dir / "videos.jsonl").read_text().splitlines()):
        src = media_dir / row["path"]
        shutil.copy(src, folder / src.name)
        (folder / src.name).with_suffix(".txt").write_text(row["caption"])
    return folder


def _forbid_encoders(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a frozen encoder was loaded although the run reads a cache")

    monkeypatch.setattr(FrameAutoencoder, "from_pretrained", classmethod(refuse))
    monkeypatch.setattr(TextEncoder, "from_pretrained", classmethod(refuse))


def test_folder_to_cache_to_training(tmp_path, clip_folder, micro_model_dir, monkeypatch, capsys):
    manifest, cache = tmp_path / "clips.jsonl", tmp_path / "cache"
    assert main(["prepare-data", "--folder", str(clip_folder), "--out", str(manifest)]) == 0
    assert "6 files" in capsys.readouterr().out
    assert main(["prepare-data", "--manifest", str(manifest), "--cache", str(cache), "--model", str(micro_model_dir),
                 "--resolution", "16", "--frames", "4", "--fps", "8", "--batch-size", "4"]) == 0
    info = json.loads((cache / "cache.json").read_text())
    assert info["count"] == 6 and info["latent_shape"] == [4, 4, 8, 8] and info["text_shapes"] == [[12, 24], [10, 40]]
    assert [s["count"] for s in info["shards"]] == [6]
    ds = CachedDataset(cache)
    item = ds[(0, 5)]
    assert item["latents"].shape == (4, 4, 8, 8) and [t.shape for t in item["text"]] == [(12, 24), (10, 40)]
    assert item["caption"] == (clip_folder / "000005.txt").read_text()

    _forbid_encoders(monkeypatch)
    trainer = run_stage("video_256", tmp_path / "run", f"data.cache={json.dumps(str(cache))}",
                        f"model.init={json.dumps(str(micro_model_dir))}", "data.num_frames=4")
    assert trainer.status == "finished" and trainer.task.inputs.is_cached
    assert (tmp_path / "run/model/unet/diffusion_pytorch_model.safetensors").exists()


def test_image_cache_and_shards(tmp_path, media_dir, micro_model_dir, monkeypatch):
    cache, shards = tmp_path / "icache", tmp_path / "shards"
    assert main(["prepare-data", "--manifest", str(media_dir / "images.jsonl"), "--shards", str(shards),
                 "--per-shard", "4"]) == 0
    assert sorted(p.name for p in shards.glob("*.tar")) == ["shard-000000.tar", "shard-000001.tar"]
    assert main(["prepare-data", "--config", "text_to_image", "--cache", str(cache),
                 f"data.shards={json.dumps(str(shards))}", f"model.init={json.dumps(str(micro_model_dir))}",
                 "data.resolution=16", "--dtype", "bfloat16"]) == 0
    info = json.loads((cache / "cache.json").read_text())
    assert info["kind"] == "image" and info["latent_shape"] == [4, 8, 8] and info["dtype"] == "bfloat16"
    with pytest.raises(Exception, match="the cache holds"):
        run_stage("video_256", tmp_path / "wrong", f"data.cache={json.dumps(str(cache))}",
                  f"model.init={json.dumps(str(micro_model_dir))}")
    _forbid_encoders(monkeypatch)
    trainer = run_stage("text_to_image", tmp_path / "t2i", f"data.cache={json.dumps(str(cache))}",
                        f"model.init={json.dumps(str(micro_model_dir))}", "train.max_steps=1")
    assert trainer.status == "finished"
    assert all(t.dtype == torch.float32 for t in trainer.task.inputs.null())
