"""Shared fixtures for the diffusion-maths tests."""

import pytest

from emu_video.diffusion import NoiseSchedule


@pytest.fixture(params=["stage_256", "stage_512"])
def schedule(request) -> NoiseSchedule:
    return getattr(NoiseSchedule, request.param)()

