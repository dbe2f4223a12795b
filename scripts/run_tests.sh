#!/usr/bin/env bash
# Install what the tests need on a fresh machine (CPU PyTorch first, then the package), then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --upgrade pip
python3 -c "import torch" 2>/dev/null || python3 -m pip install --quiet torch==2.13.0
python3 -m pip install --quiet -e ".[test,lora,lowmem]"
# Headless Chromium for the JUICE browser tests (Debian package; skipped where apt is not available).
if command -v apt-get >/dev/null 2>&1; then bash .ci/browser_setup.sh >/dev/null; fi
python3 -m pytest "$@"
