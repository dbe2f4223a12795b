import pytest

from emu_video.pipelines import EmuVideoComponents


@pytest.fixture(scope="module")
def components(tiny_model_dir):
    return EmuVideoComponents.from_pretrained(tiny_model_dir)
