"""Which clips are kept: thresholds (the paper's by default) and the reasons a clip is dropped.

The paper's high-quality set: CLIP(first frame, text) > 0.25, aesthetic(first frame) > 5.7, and the
sliding-window minimum of the motion score > 0.5 (see `motion` for the units). The length, size and rate
minimums are this project's, set so a kept clip can feed the `video_hq` stage (16 frames at 4 fps need 3.75 s).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from emu_video.data.curation.motion import FRAME_DIFFERENCE, MOTION_VECTORS


@dataclass
class Thresholds:
    min_clip_score: float = 0.25
    min_aesthetic: float = 5.7
    min_motion: float = 0.5  # motion-vector score, pixels at a 512-px short side
    min_motion_diff: float = 2.0  # frame-difference score, grey levels (streams without motion vectors)
    min_seconds: float = 4.0
    min_side: int = 512  # shorter side in pixels (the video_hq stage trains at 512)
    min_fps: float = 8.0

    def to_dict(self) -> dict:
        return asdict(self)


def drop_reasons(clip: dict, t: Thresholds) -> list[str]:
    """Why a scored clip fails the thresholds (empty: it passes). Scores that are None (a filter that is off)
    do not count against it."""
    reasons = []
    info = clip["info"]
    if info["duration"] < t.min_seconds:
        reasons.append(f"too short ({info['duration']:.2f} s < {t.min_seconds:g} s)")
    if min(info["width"], info["height"]) < t.min_side:
        reasons.append(f"too small ({info['width']}x{info['height']}, short side < {t.min_side})")
    if info["fps"] < t.min_fps:
        reasons.append(f"frame rate too low ({info['fps']:g} < {t.min_fps:g} fps)")
    motion = clip.get("motion")
    if motion is None or motion["score"] is None:  # a scene too short to be written, or a single frame
        reasons.append("no motion measurement")
    else:
        limit = {MOTION_VECTORS: t.min_motion, FRAME_DIFFERENCE: t.min_motion_diff}[motion["method"]]
        if not motion["score"] > limit:
            reasons.append(f"low motion ({motion['score']:.3f} <= {limit:g}, {motion['method']})")
    if clip.get("clip_score") is not None and not clip["clip_score"] > t.min_clip_score:
        reasons.append(f"low CLIP score ({clip['clip_score']:.3f} <= {t.min_clip_score:g})")
    if clip.get("aesthetic") is not None and not clip["aesthetic"] > t.min_aesthetic:
        reasons.append(f"low aesthetic score ({clip['aesthetic']:.2f} <= {t.min_aesthetic:g})")
    return reasons
