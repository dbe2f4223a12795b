import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

import builders  # noqa: E402
import media_helpers  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A complete tiny emu-video model folder (random weights); read-only for tests."""
    return builders.write_tiny_model_folder(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory):
    """A tiny Stable-Diffusion-style diffusers folder (random weights)."""
    return builders.write_tiny_sd_folder(tmp_path_factory.mktemp("tiny_sd"))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    """6 real mp4 clips (65 frames at 16 fps) and 6 png images with JSONL manifests."""
    return media_helpers.make_media_dataset(tmp_path_factory.mktemp("media"))


@pytest.fixture
def one_thread():
    """Small models run fastest (and steadiest) on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
