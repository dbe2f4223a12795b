"""Running Triton kernels on the CPU: Triton's interpreter, in a subprocess (TRITON_INTERPRET=1 must be set
before Triton is imported)."""

import importlib.util
import os
import subprocess
import sys

import pytest

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")


def run_in_triton_interpreter(script: str, timeout: float) -> None:
    """Run `script` with Triton's interpreter; it must exit 0 and print a line starting with OK."""
    here = os.path.dirname(os.path.abspath(__file__))  # the scripts may import this folder's helpers
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert done.stdout.strip().startswith("OK")
