"""`emu-video demo` from the command line: its help, the install hint without Gradio, argument refusals
before the model loads."""

import sys

import pytest

from emu_video.cli.main import main


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("emu-video: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_help_explains_installing_and_sharing(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for words in ("--model DIR", "--host HOST", "--port PORT", "--device DEVICE", "127.0.0.1", "--host 0.0.0.0",
                  "ssh -L 7860:127.0.0.1:7860", "pip install 'emu-video[demo]'", "one at a time"):
        assert words in text, words


def test_without_gradio_it_says_how_to_install_it(capsys, monkeypatch):
    import emu_video.cli.generate as generate

    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    monkeypatch.setattr(generate, "load_components", lambda args: pytest.fail("the model was loaded"))
    assert main(["demo"]) == 2
    assert "the demo needs Gradio: pip install 'emu-video[demo]'" in _one_line_error(capsys)


def test_arguments_are_checked_before_the_model_loads(capsys, monkeypatch):
    import emu_video.cli.generate as generate

    monkeypatch.setattr(generate, "load_components", lambda args: pytest.fail("the model was loaded"))
    for args, message in [
        (["--port", "0"], "--port must be from 1 to 65535, got 0"),
        (["--port", "70000"], "--port must be from 1 to 65535"),
        (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
        (["--queue-size", "0"], "--queue-size must be at least 1"),
        (["--device", "foo"], "is not a torch device"),
    ]:
        assert main(["demo", *args]) == 2, args
        assert message in _one_line_error(capsys)
