"""Importing our package and the libraries it uses prints nothing (optional extras installed or not)."""

import subprocess
import sys


def test_imports_are_silent():
    code = ("import emu_video, importlib.util\n"
            "import transformers, diffusers\n"
            "if importlib.util.find_spec('bitsandbytes'): import bitsandbytes\n"
            "if importlib.util.find_spec('peft'): import peft\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "kernels-community" not in done.stderr + done.stdout
    assert done.stdout == ""
