import collections
import json

import numpy as np
import pytest

from emu_video.errors import UserError
from emu_video.io.video import read_image, read_video
from emu_video.shapes import palette as P
from emu_video.shapes.datasets import (
    image_combinations,
    image_sample,
    image_scene,
    iter_image_samples,
    iter_video_samples,
    make_dataset,
    video_scene,
)
from emu_video.shapes.grammar import parse_prompt
from emu_video.shapes.judge import judge
from emu_video.shapes.scene import Scene


def test_video_scenes_never_hold_heldout_pairs():
    counts = collections.Counter()
    n_two = 0
    for i in range(2000):
        sc = video_scene(0, i)
        assert sc.problems() == []
        n_two += len(sc.objects) == 2
        for o in sc.objects:
            assert (o.color, o.shape) not in P.HELDOUT_PAIRS
            counts[(o.color, o.shape)] += 1
            counts[o.motion] += 1
    assert len([k for k in counts if isinstance(k, tuple)]) == 21 - 5  # every other pair appears
    assert all(counts[m] > 0 for m in P.MOTIONS)
    assert n_two == 600  # 30 % two-object clips, on a fixed schedule


def test_image_scenes_cover_every_combination_in_each_cycle():
    combos = image_combinations()
    assert len(combos) == 7 * 3 * 3 - 6  # white and yellow never on beige
    single = [sc for sc in (image_scene(3, i) for i in range(2 * len(combos) * 4 // 3 + 2)) if len(sc.objects) == 1]
    first, second = single[: len(combos)], single[len(combos) : 2 * len(combos)]
    for cycle in (first, second):
        got = {(sc.objects[0].color, sc.objects[0].shape, sc.background) for sc in cycle}
        assert got == set(combos)
    heldout_seen = {(o.color, o.shape) for sc in single for o in sc.objects} & P.HELDOUT_PAIRS
    assert heldout_seen == P.HELDOUT_PAIRS  # images are richer than videos
    two = [image_scene(3, i) for i in range(200)]
    assert sum(len(sc.objects) == 2 for sc in two) == 50
    for sc in two:
        assert sc.problems() == [] and all(o.motion == "still" for o in sc.objects)


def test_streams_are_deterministic_and_captions_match_scenes():
    a = list(iter_video_samples(seed=9, start=5, count=3))
    b = list(iter_video_samples(seed=9, start=5, count=3))
    for x, y in zip(a, b):
        assert x.caption == y.caption and x.scene == y.scene
        np.testing.assert_array_equal(x.frames, y.frames)
        assert x.frames.shape == (65, 128, 128, 3) and x.fps == 16
        p = parse_prompt(x.caption)
        assert [(o.color, o.shape, o.motion) for o in p.objects] == [(o.color, o.shape, o.motion) for o in x.scene.objects]
    for s in iter_image_samples(seed=1, count=5):
        p = parse_prompt(s.caption)
        assert all(o.motion is None for o in p.objects) and p.background == s.scene.background
        assert s.image.shape == (128, 128, 3)
    assert image_sample(1, 0).caption == next(iter_image_samples(seed=1)).caption


def test_make_dataset_writes_manifests_and_files(tmp_path):
    out = tmp_path / "ds"
    summary = make_dataset(out, num_videos=6, num_images=60, seed=2, progress=False)
    assert summary["num_videos"] == 6 and json.loads((out / "shapes_world.json").read_text())["seed"] == 2
    videos = [json.loads(line) for line in (out / "videos.jsonl").read_text().splitlines()]
    images = [json.loads(line) for line in (out / "images.jsonl").read_text().splitlines()]
    assert len(videos) == 6 and len(images) == 60
    assert videos[1]["path"] == "videos/000001.mp4" and images[1]["path"] == "images/000001.png"
    for row in videos:
        assert set(row) == {"path", "caption", "fps", "num_frames", "scene"}
        assert row["fps"] == 16 and row["num_frames"] == 65
        video = read_video(out / row["path"])
        assert video.frames.shape == (65, 128, 128, 3) and video.fps == 16.0
        scene = Scene.from_dict(row["scene"])
        for o in scene.objects:
            assert (o.color, o.shape) not in P.HELDOUT_PAIRS
    # A clip read back from disk is judged faithful to its training caption.
    assert judge(out / videos[0]["path"], videos[0]["caption"])["faithful"]
    for row in images[:5]:
        assert set(row) == {"path", "caption", "scene"}
        img = read_image(out / row["path"])
        assert img.shape == (128, 128, 3)
        assert judge(img, row["caption"])["faithful"]
    manifest = pytest.importorskip("emu_video.data.manifest")  # the reader training uses
    rows = manifest.read_manifest(out / "videos.jsonl")
    assert len(rows) == 6 and rows[0].path == str((out / "videos/000000.mp4").resolve())
    assert rows[0].metadata["scene"] == videos[0]["scene"] and rows[0].is_video
    assert len(manifest.read_manifest(out / "images.jsonl")) == 60
    with pytest.raises(UserError, match="already holds"):
        make_dataset(out, 1, 0, progress=False)
    make_dataset(out, 1, 0, progress=False, overwrite=True)


def test_make_dataset_with_workers_matches_serial(tmp_path):
    make_dataset(tmp_path / "a", 4, 3, seed=5, progress=False)
    make_dataset(tmp_path / "b", 4, 3, seed=5, progress=False, workers=2)
    for name in ("videos.jsonl", "images.jsonl"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_make_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(UserError):
        make_dataset(tmp_path / "x", 0, 0)
    with pytest.raises(UserError):
        make_dataset(tmp_path / "x", -1, 5)
    with pytest.raises(UserError):
        make_dataset(tmp_path / "x", 1, 1, video_two_object_fraction=1.5)
