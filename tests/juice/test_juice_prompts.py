"""Prompt files (JSONL, CSV, TSV) and finding each system's video by prompt id."""

import pytest

from emu_video.errors import UserError
from emu_video.juice.prompts import find_videos, load_prompts


def test_jsonl_csv_tsv(tmp_path):
    (tmp_path / "p.jsonl").write_text(
        '{"id": "p001", "prompt": "A dog  surfing"}\n\n{"id": 2, "prompt": "Two cats; DROP TABLE pairs; --"}\n'
    )
    got = load_prompts(tmp_path / "p.jsonl")
    assert [(p.id, p.text) for p in got] == [("p001", "A dog surfing"), ("2", "Two cats; DROP TABLE pairs; --")]

    (tmp_path / "p.csv").write_text('id,prompt,extra\np001,"A dog, surfing",x\np002,It\'s "quoted",y\n')
    got = load_prompts(tmp_path / "p.csv")
    assert [(p.id, p.text) for p in got] == [("p001", "A dog, surfing"), ("p002", 'It\'s "quoted"')]

    (tmp_path / "p.tsv").write_text("# comment\np001\tA dog\tsurfing\n\np002\tA cat\n")
    got = load_prompts(tmp_path / "p.tsv")
    assert [(p.id, p.text) for p in got] == [("p001", "A dog surfing"), ("p002", "A cat")]


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("p.jsonl", '{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', "repeats"),
        ("p.jsonl", '{"id": "../etc", "prompt": "x"}\n', "bad prompt id"),
        ("p.jsonl", '{"id": "a/b", "prompt": "x"}\n', "bad prompt id"),
        ("p.jsonl", '{"id": "a", "prompt": "  "}\n', "empty text"),
        ("p.jsonl", '{"id": "a", "text": "x"}\n', "expected an object"),
        ("p.jsonl", "not json\n", "not valid JSON"),
        ("p.jsonl", "\n\n", "no prompts"),
        ("p.csv", "name,text\na,b\n", "must name the columns"),
        ("p.txt", "p001 no tab here\n", "id<TAB>prompt"),
        ("p.yaml", "a: b\n", "unknown prompt file type"),
        # An escaped lone surrogate is valid JSON but not text: SQLite could not store it.
        ("p.jsonl", '{"id": "a", "prompt": "x \\udcb2"}\n', r"p.jsonl:1: prompt 'a' is not valid Unicode text"),
    ],
)
def test_bad_prompt_files(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=message):
        load_prompts(tmp_path / name)


def test_prompt_file_that_is_not_utf8(tmp_path):
    (tmp_path / "p.tsv").write_bytes(b"p001\tcaf\xe9\n")
    with pytest.raises(UserError, match="p.tsv: not UTF-8 text"):
        load_prompts(tmp_path / "p.tsv")


def test_missing_prompt_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_prompts(tmp_path / "nope.jsonl")


def test_find_videos(tmp_path):
    (tmp_path / "p.jsonl").write_text("".join(f'{{"id": "p{i}", "prompt": "x"}}\n' for i in range(3)))
    prompts = load_prompts(tmp_path / "p.jsonl")
    d = tmp_path / "A"
    d.mkdir()
    (d / "p0.mp4").write_bytes(b"x")
    (d / "p1.webm").write_bytes(b"x")
    (d / "notes.txt").write_text("x")
    found, missing = find_videos(d, prompts, "A")
    assert {k: v.name for k, v in found.items()} == {"p0": "p0.mp4", "p1": "p1.webm"}
    assert missing == ["p2"]
    (d / "p0.gif").write_bytes(b"x")
    with pytest.raises(UserError, match="several videos"):
        find_videos(d, prompts, "A")
    with pytest.raises(UserError, match="not found"):
        find_videos(tmp_path / "none", prompts, "B")
