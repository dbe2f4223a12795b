import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import builders  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A complete tiny emu-video model folder (random weights); read-only for tests."""
    return builders.write_tiny_model_folder(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory):
    """A tiny Stable-Diffusion-style diffusers folder (random weights)."""
    return builders.write_tiny_sd_folder(tmp_path_factory.mktemp("tiny_sd"))
