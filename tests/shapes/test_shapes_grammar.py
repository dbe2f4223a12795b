import itertools

import numpy as np
import pytest

from emu_video.errors import UserError
from emu_video.shapes import palette as P
from emu_video.shapes.grammar import (
    BACKGROUND_WORDS,
    MOTION_PHRASES,
    SHAPE_WORDS,
    caption,
    image_caption,
    parse_prompt,
    scene_from_prompt,
)
from emu_video.shapes.scene import Scene, ShapeObject, random_scene


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def test_every_word_and_synonym_parses():
    n = 0
    for color, (shape, words), (motion, phrases) in itertools.product(
        P.COLOR_NAMES, SHAPE_WORDS.items(), MOTION_PHRASES.items()
    ):
        for word, phrase in itertools.product(words, phrases):
            for bg, bg_words in [(None, [None]), *BACKGROUND_WORDS.items()]:
                for bg_word in bg_words:
                    text = f"{_article(color)} {color} {word} {phrase}"
                    if bg_word:
                        text += f" on a {bg_word} background"
                    parsed = parse_prompt(text)
                    (obj,) = parsed.objects
                    assert (obj.color, obj.shape, obj.motion, parsed.background) == (color, shape, motion, bg)
                    n += 1
    assert n == 7 * 7 * 21 * 5


def test_case_article_and_full_stop_are_free():
    want = parse_prompt("an orange circle moves left on a black background")
    for text in [
        "An Orange Circle Moves Left On A Black Background.",
        "a orange circle moves left on an black background",
        "AN ORANGE CIRCLE MOVES LEFT ON A BLACK BACKGROUND .",
        "  an orange circle   moves left on a black background.  ",
    ]:
        assert parse_prompt(text) == want


def test_two_object_and_image_forms():
    p = parse_prompt("a red circle moves left and a blue square moves up on a black background")
    assert [(o.color, o.shape, o.motion) for o in p.objects] == [("red", "circle", "left"), ("blue", "square", "up")]
    assert p.background == "black"
    img = parse_prompt("a red circle on a black background")
    assert img.objects[0].motion is None and img.background == "black"
    assert parse_prompt("a red circle moves left").background is None
    two_img = parse_prompt("a red ball and a white block on a grey background")
    assert [o.motion for o in two_img.objects] == [None, None] and two_img.background == "gray"


def test_canonical_and_random_captions_round_trip():
    rng = np.random.default_rng(0)
    for i in range(300):
        sc = random_scene(rng, num_objects=1 + i % 2)
        for text in (caption(sc), caption(sc, rng=rng), caption(sc, rng=rng, include_background=False)):
            p = parse_prompt(text)
            assert [(o.color, o.shape, o.motion) for o in p.objects] == [(o.color, o.shape, o.motion) for o in sc.objects]
            assert p.background in (sc.background, None)
        ip = parse_prompt(image_caption(sc, rng=rng))
        assert [(o.color, o.shape, o.motion) for o in ip.objects] == [(o.color, o.shape, None) for o in sc.objects]


def test_canonical_caption_text():
    sc = Scene([ShapeObject("orange", "circle", 12, 64, 64, "left"), ShapeObject("blue", "square", 12, 64, 64, "up")], "gray")
    assert caption(sc) == "an orange circle moves left and a blue square moves up on a gray background"
    one = Scene([ShapeObject("red", "circle", 12, 64, 64, "left")], "black")
    assert image_caption(one) == "a red circle on a black background"
    assert caption(one, include_background=False) == "a red circle moves left"


def test_scene_from_prompt_covers_every_combination():
    for color, shape, motion, bg in itertools.product(P.COLOR_NAMES, P.SHAPES, P.MOTIONS, P.BACKGROUND_NAMES):
        text = f"{_article(color)} {color} {shape} {MOTION_PHRASES[motion][0]} on a {bg} background"
        if not P.allowed_on(color, bg):
            with pytest.raises(UserError, match="never appear"):
                scene_from_prompt(text, 0)
            continue
        sc = scene_from_prompt(text, 7)
        assert sc.problems() == []
        assert (sc.objects[0].color, sc.objects[0].shape, sc.objects[0].motion, sc.background) == (color, shape, motion, bg)


def test_scene_from_prompt_seeds_free_choices():
    a = scene_from_prompt("a red circle moves left", 1)
    assert a == scene_from_prompt("A red circle moves left.", 1)
    others = {scene_from_prompt("a red circle moves left", s) for s in range(20)}
    assert len(others) == 20
    assert len({s.background for s in others}) > 1  # background drawn when omitted
    assert {s.background for s in (scene_from_prompt("a white box grows", s) for s in range(30))} <= {"black", "gray"}
    two = scene_from_prompt("a red square grows and a blue square grows on a black background", 3)
    assert two.problems() == [] and len(two.objects) == 2
    assert scene_from_prompt("a red circle on a beige background", 0).objects[0].motion == "still"


@pytest.mark.parametrize(
    "prompt, words",
    [
        ("a pink circle moves left", ["'pink'"]),
        ("a red circle moves left quickly", ["'quickly'"]),
        ("a big red dog jumps", ["'big'", "'dog'", "'jumps'"]),
        ("a red circle circle", ["'circle'", "after 'a red circle'"]),
        ("red circle moves left", ["'red circle moves left'", "at the start"]),
        ("a red circle on a blue background", ["'blue background'"]),
        ("a red circle and a blue square and a green triangle", ["'and a green triangle'"]),
        ("a red", ["ends too early", "shape"]),
    ],
)
def test_out_of_grammar_prompts_name_the_words(prompt, words):
    with pytest.raises(UserError) as err:
        parse_prompt(prompt)
    for w in words:
        assert w in str(err.value)
    with pytest.raises(UserError):
        scene_from_prompt(prompt, 0)


def test_two_objects_need_different_colours():
    with pytest.raises(UserError, match="different colours"):
        parse_prompt("a red circle and a red square")
    with pytest.raises(UserError):
        parse_prompt("")
