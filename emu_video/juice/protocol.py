"""The JUICE protocol: the two questions, their predefined reasons, and the study's fixed rules.

Emu Video's human evaluation (JUICE) shows a rater two videos made for the same text prompt and asks two
questions. Each answer picks one video and must be justified by ticking at least one of the question's
predefined reasons. Five raters see every pair, each with the left/right order randomised, and the
majority of the five decides the pair.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEMS = ("a", "b")
SIDES = ("left", "right")
DEFAULT_RATERS_PER_PAIR = 5
REASONS_PROMPT = "Which factors contributed towards making this choice? (Select all that apply)"


@dataclass(frozen=True)
class Reason:
    key: str
    label: str
    help: str


@dataclass(frozen=True)
class Question:
    axis: str
    title: str
    text: str
    reasons: tuple[Reason, ...]

    @property
    def reason_keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.reasons)


QUALITY = Question(
    axis="quality",
    title="Quality",
    text="Which video do you prefer?",
    reasons=(
        Reason("pixel_sharpness", "Pixel sharpness", "Crisp detail; no blur, noise or compression artefacts."),
        Reason("motion_smoothness", "Motion smoothness", "Motion is fluid and natural; no jitter or stutter."),
        Reason(
            "recognizable_objects",
            "Recognizable objects/scenes",
            "Objects and scenes look like what they are meant to be.",
        ),
        Reason(
            "frame_consistency",
            "Frame consistency",
            "Objects and scene keep their shape, identity and colour from frame to frame.",
        ),
        Reason("amount_of_motion", "Amount of motion", "The video shows a suitable amount of movement, not a still."),
    ),
)

FAITHFULNESS = Question(
    axis="faithfulness",
    title="Faithfulness",
    text="Which video aligns better with the text prompt?",
    reasons=(
        Reason(
            "spatial_alignment",
            "Spatial text alignment",
            "The objects, attributes and their arrangement match the prompt.",
        ),
        Reason(
            "temporal_alignment",
            "Temporal text alignment",
            "The actions and motion over time match the prompt.",
        ),
    ),
)

QUESTIONS: tuple[Question, ...] = (QUALITY, FAITHFULNESS)
AXES: tuple[str, ...] = tuple(q.axis for q in QUESTIONS)
QUESTION_BY_AXIS = {q.axis: q for q in QUESTIONS}


def reason_label(axis: str, key: str) -> str:
    for r in QUESTION_BY_AXIS[axis].reasons:
        if r.key == key:
            return r.label
    raise KeyError(f"unknown reason {key!r} for {axis}")


def questions_json() -> list[dict]:
    """The questions as the rater page renders them."""
    return [
        {
            "axis": q.axis,
            "title": q.title,
            "text": q.text,
            "reasons_prompt": REASONS_PROMPT,
            "reasons": [{"key": r.key, "label": r.label, "help": r.help} for r in q.reasons],
        }
        for q in QUESTIONS
    ]


def agreement_level(votes_for_a: int, n: int) -> str:
    """'complete' (n|0), 'split' (the narrowest majority, 3|2 for five raters) or 'partial' (anything between)."""
    if n < 1 or n % 2 == 0:
        raise ValueError(f"the number of raters must be odd, got {n}")
    if not 0 <= votes_for_a <= n:
        raise ValueError(f"votes {votes_for_a} outside 0..{n}")
    major = max(votes_for_a, n - votes_for_a)
    if major == n:
        return "complete"
    if major == (n + 1) // 2:
        return "split"
    return "partial"


AGREEMENT_LEVELS = ("complete", "partial", "split")
