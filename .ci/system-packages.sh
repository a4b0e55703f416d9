#!/usr/bin/env bash
# Install the Debian packages the test suite needs, idempotently.
#
# Why: the real-browser tests (tests/browser/) drive Debian's Chromium through
# Playwright with executable_path=/usr/bin/chromium, because `playwright install`
# cannot download a browser here. Fonts are listed explicitly so screenshots of
# JupyterLab render readable text even on a minimal image.
#
# Fast path: when every package is already installed this exits without touching
# the network (no `apt-get update`), so .ci/run can call it on every run.
set -euo pipefail

PACKAGES=(
    chromium            # headless browser driven by Playwright
    fonts-liberation    # metric-compatible Arial/Times/Courier for screenshots
    fonts-dejavu-core   # fallback glyphs (box drawing, arrows, currency signs)
    postgresql          # the server of the shared-ledger tests (15 on Debian 12), started by .ci/run
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system-packages: all present (${PACKAGES[*]})"
    exit 0
fi

echo "system-packages: installing ${missing[*]}"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

if [[ ! -x /usr/bin/chromium ]]; then
    echo "system-packages: /usr/bin/chromium missing after install" >&2
    exit 1
fi
echo "system-packages: done"
