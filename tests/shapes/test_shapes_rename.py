"""shapes.rename: training captions say a known word another way (teaching a fine-tune a new word)."""

import pytest

from emu_video.errors import UserError
from emu_video.shapes.rename import check_renames, rename_words
from emu_video.shapes.stream import ShapesWorldDataset


def test_whole_words_only():
    assert rename_words("a red circle and a reddish square", {"red": "vermilion"}) == \
        "a vermilion circle and a reddish square"
    assert rename_words("a red circle", {}) == "a red circle"


def test_dataset_captions_use_the_new_word_and_keep_the_pixels():
    plain = ShapesWorldDataset("image", 32, seed=3)
    renamed = ShapesWorldDataset("image", 32, seed=3, rename={"red": "vermilion"})
    caps = [(plain[(0, i)]["caption"], renamed[(0, i)]["caption"]) for i in range(60)]
    with_red = [(a, b) for a, b in caps if "red" in a.split()]
    assert with_red and all("vermilion" in b.split() and "red" not in b.split() for _, b in with_red)
    assert all(a == b for a, b in caps if "red" not in a.split())
    assert (plain[(0, 5)]["pixels"] == renamed[(0, 5)]["pixels"]).all()


@pytest.mark.parametrize("renames, message", [
    ({"crimson": "x"}, "not a word of Shapes World captions"),
    ({"red": "Vermilion!"}, "lower-case letters"),
    ({"red": ""}, "lower-case letters"),
])
def test_bad_renames_are_refused(renames, message):
    with pytest.raises(UserError, match=message):
        check_renames(renames)


def test_the_stage_config_loads_and_other_data_is_refused(tmp_path):
    from emu_video.training.config import load_config

    cfg = load_config("configs/stages/shapes_world/lora_new_word.toml")
    assert cfg.shapes.rename == {"red": "vermilion"} and cfg.model.lora_rank == 8
    with pytest.raises(UserError, match="shapes.rename"):
        load_config("configs/stages/shapes_world/lora_new_word.toml", ["data.source='files'",
                                                                       f"data.manifest='{tmp_path / 'm.jsonl'}'"])


def test_the_new_word_script_judges_both_words(tiny_model_dir, tmp_path, one_thread):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "lora_new_word.py"
    spec = importlib.util.spec_from_file_location("lora_new_word", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    items = script.word_items("red", ["eval-seen"], seeds=1)
    assert items and all("red" in p.split() for p, _ in items)
    out = tmp_path / "r.json"
    assert script.main(["--model", str(tiny_model_dir), "--set", "eval-seen", "--seeds", "1", "--steps", "1",
                        "--out", str(out)]) == 0
    res = json.loads(out.read_text())["results"]
    assert [r["word"] for r in res] == ["vermilion", "red"]
    red_objects = sum(p.count(" red ") + p.startswith("red ") for p, _ in items)
    assert all(r["objects"] == red_objects and sum(r["drawn"].values()) == red_objects for r in res)
    assert script.main(["--model", str(tiny_model_dir), "--old", "crimson"]) == 2
