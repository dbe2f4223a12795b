import media_helpers
import pytest
import torch

from emu_video.data.datasets import MediaSource, PixelDataset, Skipped
from emu_video.data.frames import ClipSpec
from emu_video.data.loader import BatchStream
from emu_video.data.sampler import SamplerState, ShardedSampler
from emu_video.errors import UserError


def _take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_ranks_get_disjoint_shares_that_cover_the_epoch():
    a = ShardedSampler(10, rank=0, world_size=2, seed=5)
    b = ShardedSampler(10, rank=1, world_size=2, seed=5)
    ia, ib = [i for _, i in _take(a, 5)], [i for _, i in _take(b, 5)]
    assert not set(ia) & set(ib) and sorted(ia + ib) == list(range(10))
    assert [e for e, _ in _take(a, 6)] == [0] * 5 + [1]
    assert _take(a, 5) != _take(ShardedSampler(10, 0, 2, seed=6), 5)  # another seed, another order


def test_sampler_restarts_at_its_state():
    s = ShardedSampler(7, seed=1)
    stream = _take(s, 20)
    state = SamplerState()
    for _ in range(9):
        state = s.advance(state)
    assert state == SamplerState(1, 2)
    assert _take(ShardedSampler(7, seed=1, state=state), 11) == stream[9:]


def test_sampler_needs_an_item_per_rank():
    with pytest.raises(UserError, match="fewer than the 4 ranks"):
        ShardedSampler(3, 0, 4)


def _dataset(tmp_path, media_dir, corrupt_at=(2,)):
    rows = [{"path": str(media_dir / f"videos/{i:06d}.mp4"), "caption": f"clip {i}"} for i in range(6)]
    for k in corrupt_at:
        rows.insert(k, {"path": str(media_helpers.write_corrupt_video(tmp_path / f"bad{k}.mp4")), "caption": "x"})
    rows.append({"path": str(tmp_path / "missing.mp4"), "caption": "gone"})
    manifest = media_helpers.write_manifest_lines(tmp_path / "m.jsonl", rows)
    return PixelDataset(MediaSource([str(manifest)]), "video", 16, ClipSpec(4, 4, "random"), seed=0)


def test_batches_skip_and_count_broken_files(tmp_path, media_dir):
    ds = _dataset(tmp_path, media_dir)
    stream = BatchStream(ds, batch_size=3, shuffle=False)
    first, second = stream.next_batch(), stream.next_batch()
    assert first["pixels"].shape == (3, 3, 4, 16, 16)
    assert first["index"] == [0, 1, 3] and second["index"] == [4, 5, 6]  # 2 (corrupt) is skipped, not replaced
    assert stream.state_dict()["skipped"] == {"unreadable": 1}
    third = stream.next_batch()  # 7 (missing) is skipped, the epoch ends, epoch 1 starts
    assert third["index"] == [0, 1, 3]
    assert stream.state_dict() == {"epoch": 1, "position": 4, "skipped": {"unreadable": 2, "missing": 1}, "used": 9}


def test_resumed_stream_continues_exactly(tmp_path, media_dir):
    ds = _dataset(tmp_path, media_dir)
    full = BatchStream(ds, batch_size=2, seed=4)
    batches = [full.next_batch() for _ in range(6)]
    part = BatchStream(ds, batch_size=2, seed=4)
    for _ in range(2):
        part.next_batch()
    resumed = BatchStream(ds, batch_size=2, seed=4, state=part.state_dict())
    for expected in batches[2:]:
        got = resumed.next_batch()
        assert got["index"] == expected["index"] and torch.equal(got["pixels"], expected["pixels"])
    assert resumed.skipped_total == full.skipped_total


def test_worker_processes_give_the_same_batches(tmp_path, media_dir):
    ds = _dataset(tmp_path, media_dir)
    a = BatchStream(ds, batch_size=4, seed=2, num_workers=0)
    b = BatchStream(ds, batch_size=4, seed=2, num_workers=2)
    for _ in range(3):
        x, y = a.next_batch(), b.next_batch()
        assert x["index"] == y["index"] and torch.equal(x["pixels"], y["pixels"])
    b.close()


def test_data_without_a_usable_file_stops_with_a_clear_error(tmp_path):
    rows = [{"path": str(media_helpers.write_corrupt_video(tmp_path / f"b{i}.mp4")), "caption": ""} for i in range(3)]
    ds = PixelDataset(MediaSource([str(media_helpers.write_manifest_lines(tmp_path / "m.jsonl", rows))]), "video", 16,
                      ClipSpec(4, 4))
    with pytest.raises(UserError, match="no usable sample"):
        BatchStream(ds, batch_size=1).next_batch()


class _Numbers(torch.utils.data.Dataset):
    """Item k is the number k; multiples of 5 are broken."""

    def __len__(self):
        return 23

    def __getitem__(self, key):
        _, k = key
        if k % 5 == 0:
            return Skipped(k, "unreadable", f"item {k}")
        return {"x": torch.tensor([float(k)]), "caption": f"n{k}", "index": k}


def test_batches_across_chunks_and_skips_keep_the_order():
    stream = BatchStream(_Numbers(), batch_size=4, shuffle=False)
    got = [stream.next_batch() for _ in range(6)]
    flat = [int(v) for b in got for v in b["x"][:, 0]]
    # sampler order, broken items left out, the second epoch continues the last batches
    assert flat == [k for k in range(23) if k % 5] + [1, 2, 3, 4, 6, 7]
    assert all(b["caption"] == [f"n{int(v)}" for v in b["x"][:, 0]] for b in got)
    assert stream.skipped == {"unreadable": 7}  # 0, 5, 10, 15, 20, then the next epoch's 0 and 5
    assert stream.state_dict()["epoch"] == 1 and stream.state_dict()["position"] == 8


def test_a_batch_that_is_one_worker_chunk_is_handed_on_without_a_copy():
    stream = BatchStream(_Numbers(), batch_size=4, shuffle=False, state={"epoch": 0, "position": 1})
    batch = stream.next_batch()  # keys 1..4: one chunk, nothing skipped
    assert batch["x"].data_ptr() == stream._chunk["batch"]["x"].data_ptr()
