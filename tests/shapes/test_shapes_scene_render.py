import time

import numpy as np
import pytest

from emu_video.errors import UserError
from emu_video.shapes import palette as P
from emu_video.shapes.render import render, render_image
from emu_video.shapes.scene import (
    Scene,
    ShapeObject,
    pair_clear,
    position_range,
    random_scene,
)


def _scenes(n, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return [random_scene(rng, **kw) for _ in range(n)]


@pytest.mark.parametrize("num_objects", [1, 2])
def test_random_scenes_obey_every_rule(num_objects):
    for sc in _scenes(300, seed=num_objects, num_objects=num_objects):
        assert sc.problems() == []
        assert len(sc.objects) == num_objects
        for o in sc.objects:
            assert P.SIZE_RANGE[0] <= o.size <= P.SIZE_RANGE[1]
            assert P.START_RANGE[0] <= o.x <= P.START_RANGE[1] and P.START_RANGE[0] <= o.y <= P.START_RANGE[1]
            c = o.centres()
            assert c.min() >= P.CENTRE_RANGE[0] - 1e-9 and c.max() <= P.CENTRE_RANGE[1] + 1e-9
            assert P.allowed_on(o.color, sc.background)
        if num_objects == 2:
            a, b = sc.objects
            assert a.color != b.color
            d = np.linalg.norm(a.centres() - b.centres(), axis=1)
            assert d.min() >= 1.6 * (a.size + b.size) + 4 - 1e-6


def test_motions_travel_and_scale_as_specified():
    for m, (dx, dy) in P.DIRECTIONS.items():
        o = ShapeObject("red", "circle", 12, 64, 64, m)
        c = o.centres()
        assert c.shape == (65, 2)
        np.testing.assert_allclose(c[-1] - c[0], [40 * dx, 40 * dy])
        np.testing.assert_allclose(o.sizes(), 12)
    assert ShapeObject("red", "circle", 10, 64, 64, "grow").sizes()[-1] == pytest.approx(16)
    assert ShapeObject("red", "circle", 10, 64, 64, "shrink").sizes()[-1] == pytest.approx(6)
    np.testing.assert_allclose(ShapeObject("red", "circle", 10, 64, 64, "still").centres(), 64)


def test_position_ranges_keep_the_motion_inside():
    assert position_range("left") == ((56, 100), (28, 100))
    assert position_range("right") == ((28, 72), (28, 100))
    assert position_range("up") == ((28, 100), (56, 100))
    assert position_range("down") == ((28, 100), (28, 72))
    assert position_range("grow") == ((28, 100), (28, 100))


def test_problems_catch_broken_scenes():
    bad = Scene([ShapeObject("white", "circle", 12, 64, 64, "still")], "beige")
    assert any("never appears" in p for p in bad.problems())
    with pytest.raises(UserError):
        bad.validate()
    assert Scene([ShapeObject("red", "circle", 20, 64, 64, "still")], "black").problems()
    assert Scene([ShapeObject("red", "circle", 12, 30, 64, "left")], "black").problems()
    close = Scene([ShapeObject("red", "circle", 12, 50, 64, "still"), ShapeObject("blue", "square", 12, 80, 64, "still")])
    assert any("too close" in p for p in close.problems())
    assert not pair_clear(*close.objects)
    same = Scene([ShapeObject("red", "circle", 10, 30, 30, "still"), ShapeObject("red", "square", 10, 90, 90, "still")])
    assert any("different colours" in p for p in same.problems())


def test_exclude_pairs_and_contrast_exclusions():
    for sc in _scenes(400, seed=5, num_objects=None, exclude_pairs=P.HELDOUT_PAIRS):
        for o in sc.objects:
            assert (o.color, o.shape) not in P.HELDOUT_PAIRS
            assert not (o.color in ("white", "yellow") and sc.background == "beige")


def test_scene_dict_round_trip_and_determinism():
    sc = random_scene(42, num_objects=2)
    assert Scene.from_dict(sc.to_dict()) == sc
    assert random_scene(42, num_objects=2) == sc
    np.testing.assert_array_equal(render(sc), render(Scene.from_dict(sc.to_dict())))


def test_render_shape_colours_and_speed():
    sc = Scene([ShapeObject("red", "square", 12, 40, 40, "right"), ShapeObject("blue", "circle", 10, 90, 90, "grow")], "gray")
    frames = render(sc)
    assert frames.shape == (65, 128, 128, 3) and frames.dtype == np.uint8
    assert tuple(frames[0, 2, 2]) == P.BACKGROUNDS["gray"]
    assert tuple(frames[0, 40, 40]) == P.OBJECT_COLORS["red"]  # pixel (row 40, col 40) is inside the square
    assert tuple(frames[64, 40, 80]) == P.OBJECT_COLORS["red"]  # moved 40 px to the right
    assert tuple(frames[64, 40, 40]) == P.BACKGROUNDS["gray"]
    # Anti-aliased edges: some pixels are blends of object and background.
    assert len(np.unique(frames[0].reshape(-1, 3), axis=0)) > 3
    np.testing.assert_array_equal(render_image(sc), frames[0])
    render(sc)
    t0 = time.perf_counter()
    for _ in range(5):
        render(sc)
    assert (time.perf_counter() - t0) / 5 < 0.5


def test_triangle_points_up_and_square_fills_box():
    tri = render_image(Scene([ShapeObject("green", "triangle", 16, 64, 64, "still")], "black"))
    mask = np.any(tri != P.BACKGROUNDS["black"], axis=-1)
    rows = np.flatnonzero(mask.any(1))
    top, bottom = rows[0], rows[-1]
    assert mask[top].sum() < mask[bottom].sum()  # narrow at the top, wide at the bottom
    assert abs((bottom + 1 - top) - 24) <= 1  # height 1.5 s, touched pixels included
    sq = render_image(Scene([ShapeObject("green", "square", 10, 64, 64, "still")], "black"))
    assert np.all(sq[54:74, 54:74] == P.OBJECT_COLORS["green"])
