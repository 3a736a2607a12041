#!/usr/bin/env bash
# The web page's browser tests (tests/test_web_browser.py): Debian's headless-capable Chromium and
# its matching chromedriver; Selenium comes with the dev extra (.ci/run installs it). Idempotent.
set -euo pipefail
missing=()
for pkg in chromium chromium-driver; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The dev extra names selenium; a venv set up before it did gets it here.
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check 'selenium>=4.26'
