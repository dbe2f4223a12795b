import json
import tarfile

import torch

from emu_video.data.datasets import MediaSource, PixelDataset
from emu_video.data.frames import ClipSpec
from emu_video.data.manifest import read_manifest
from emu_video.data.shards import ShardReader, write_shards


def test_shards_round_trip_and_match_the_manifest(tmp_path, media_dir):
    rows = read_manifest(media_dir / "videos.jsonl")
    paths = write_shards(rows, tmp_path / "shards", per_shard=4)
    assert [p.name for p in paths] == ["shard-000000.tar", "shard-000001.tar"]
    with tarfile.open(paths[0]) as tar:
        names = tar.getnames()
    assert names[:3] == ["000000000.mp4", "000000000.txt", "000000000.json"]
    reader = ShardReader([str(tmp_path / "shards")])
    assert len(reader) == 6
    data, suffix, caption, meta = reader.read(5)
    assert suffix == ".mp4" and caption == rows[5].caption and meta["fps"] == 16
    assert data == open(rows[5].path, "rb").read()
    assert (paths[0].parent / "shard-000000.tar.index.json").exists()

    spec = ClipSpec(8, 4, "random")
    from_files = PixelDataset(MediaSource([str(media_dir / "videos.jsonl")]), "video", 16, spec, seed=1)
    from_shards = PixelDataset(MediaSource(shards=[str(tmp_path / "shards/*.tar")]), "video", 16, spec, seed=1)
    for i in (0, 5):
        a, b = from_files[(2, i)], from_shards[(2, i)]
        assert a["caption"] == b["caption"] and torch.equal(a["pixels"], b["pixels"])


def test_foreign_webdataset_shard_with_json_caption(tmp_path, media_dir):
    import io

    png = (media_dir / "images/000000.png").read_bytes()
    with tarfile.open(tmp_path / "x.tar", "w") as tar:
        for name, data in (("a/k1.jpg.json", b"{}"), ("a/k1.png", png),
                           ("a/k1.json", json.dumps({"caption": "from json", "w": 1}).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    reader = ShardReader([str(tmp_path / "x.tar")])
    _, suffix, caption, meta = reader.read(0)
    assert suffix == ".png" and caption == "from json" and meta == {"w": 1}
    ds = PixelDataset(MediaSource(shards=[str(tmp_path / "x.tar")]), "image", 8)
    assert ds[(0, 0)]["pixels"].shape == (3, 8, 8)
