#!/usr/bin/env bash
# Install what the tests need on a fresh machine (CPU PyTorch first, then the package), then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --upgrade pip
python3 -c "import torch" 2>/dev/null || python3 -m pip install --quiet torch==2.13.0
python3 -m pip install --quiet -e ".[test,demo,lora,lowmem]"
# Reference implementation for the FVD tests. cd-fvd declares torchvision (which would pull another torch) but the
# parts the tests import (its I3D, preprocessing and FeatureStats) need only torch, numpy, scipy, tqdm, requests.
python3 -m pip install --quiet --no-deps "cd-fvd==0.1.1"
# `emu-video curate`: PySceneDetect without its GUI OpenCV (which needs libGL), next to the headless build.
python3 -m pip install --quiet "opencv-python-headless>=4.8" "imagehash>=4.3" platformdirs "click>=8.0"
python3 -m pip install --quiet --no-deps "scenedetect>=0.6.5"
# Headless Chromium for the JUICE and demo browser tests (Debian package; skipped where apt is not available).
if command -v apt-get >/dev/null 2>&1; then bash .ci/browser_setup.sh >/dev/null; fi
python3 -m pytest "$@"
