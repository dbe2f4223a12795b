import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import train_helpers  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="session")
def micro_model_dir(tmp_path_factory):
    return train_helpers.write_micro_model_folder(tmp_path_factory.mktemp("micro_model"))
