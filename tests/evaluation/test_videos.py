"""Listing a video folder: sub-folders (UCF-101's class folders) included, hidden files and folders left out."""

from __future__ import annotations

import pytest

from emu_video.errors import UserError
from emu_video.evaluation.videos import list_videos


def test_lists_sub_folders_sorted_by_path_without_hidden_files(tmp_path):
    for rel in ("YoYo/v_YoYo_g01_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi",
                "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "top.mp4", ".hidden.tmp.mp4", ".cache/x.mp4",
                "notes.txt", "Archery/readme.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).touch()
    names = [p.relative_to(tmp_path).as_posix() for p in list_videos(tmp_path)]
    assert names == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi",
                     "YoYo/v_YoYo_g01_c01.avi", "top.mp4"]
    assert [p.name for p in list_videos(tmp_path, limit=1)] == ["v_ApplyEyeMakeup_g01_c01.avi"]
    with pytest.raises(UserError, match="no videos"):
        list_videos(tmp_path / "Archery")
