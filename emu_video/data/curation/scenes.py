"""Scene cuts with PySceneDetect (its content detector over the PyAV backend: no OpenCV video I/O).

A cut is the index of the first frame of a new scene. The content detector compares each frame's HSV
content with the previous frame's and reports a cut where the change exceeds `threshold` (PySceneDetect's
default, 27, on its 0-255 scale), with scenes at least `min_scene_frames` long.
"""

from __future__ import annotations

DEFAULT_THRESHOLD = 27.0
DEFAULT_MIN_SCENE_SECONDS = 0.5


def detect_cuts(path: str, threshold: float = DEFAULT_THRESHOLD, min_scene_frames: int = 8) -> list[int]:
    """Frame indices where a new scene starts (empty for a single-scene clip)."""
    from scenedetect import ContentDetector, SceneManager
    from scenedetect.backends.pyav import VideoStreamAv

    video = VideoStreamAv(str(path), suppress_output=True)  # leaves FFmpeg's log level as PyAV set it
    manager = SceneManager()
    manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=max(1, int(min_scene_frames))))
    manager.detect_scenes(video, show_progress=False)
    return [int(start.frame_num) for start, _ in manager.get_scene_list()[1:]]


def scene_ranges(num_frames: int, cuts: list[int]) -> list[tuple[int, int]]:
    """[start, end) frame ranges of the scenes between `cuts`."""
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < num_frames), num_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def min_scene_frames(fps: float, seconds: float = DEFAULT_MIN_SCENE_SECONDS) -> int:
    return max(1, round(seconds * fps))
