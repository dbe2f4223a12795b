import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from juice_helpers import ServerThread, tiny_pairs  # noqa: E402


@pytest.fixture
def make_study(tmp_path):
    """make_study(pairs, raters=0, raters_per_pair=5) -> (study, [(label, token), ...]) from tiny videos."""
    from emu_video.juice.study import make_study_from_files

    counter = {"n": 0}

    def make(pairs=3, raters=0, raters_per_pair=5, name=None):
        counter["n"] += 1
        name = name or f"s{counter['n']}"
        study = make_study_from_files(
            tmp_path / "root",
            name,
            tiny_pairs(tmp_path, pairs),
            system_a="Ours",
            system_b="Theirs",
            raters_per_pair=raters_per_pair,
        )
        made = study.add_raters(raters) if raters else []
        return study, made

    return make


@pytest.fixture
def serve():
    """serve(study, lease_seconds=3600) -> base URL of a running server (stopped after the test)."""
    servers = []

    def start(study, lease_seconds=3600.0):
        s = ServerThread(study, lease_seconds)
        servers.append(s)
        return s.base_url

    yield start
    for s in servers:
        s.close()
