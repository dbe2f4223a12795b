import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "data"))

import media_helpers  # noqa: E402
import train_helpers  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    """6 real mp4 clips (65 frames at 16 fps) and 6 png images with JSONL manifests."""
    return media_helpers.make_media_dataset(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def micro_model_dir(tmp_path_factory):
    return train_helpers.write_micro_model_folder(tmp_path_factory.mktemp("micro_model"))
