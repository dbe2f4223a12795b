#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/juice/test_juice_browser.py, tests/demo/test_demo_browser.py):
# Debian's `chromium` package plus Playwright's Python package, which drives it through
# executable_path=/usr/bin/chromium. No browser is downloaded (never `playwright install`).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

if ! command -v chromium >/dev/null 2>&1; then
    $SUDO apt-get update
    $SUDO apt-get install -y chromium
fi
python -m pip install "playwright>=1.40"

chromium --version 2>/dev/null
python -c "import playwright.sync_api; print('playwright', __import__('importlib.metadata').metadata.version('playwright'))"
