#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/ui): Debian's package, /usr/bin/chromium.
# Idempotent: does nothing when it is there. Playwright (a Python dev dependency) drives this
# Chromium; never run `playwright install`, which downloads browsers of its own.
# FRUITS_CHROMIUM: another Chromium binary to use instead (checked, never installed).
set -euo pipefail

DEBIAN_CHROMIUM=/usr/bin/chromium
CHROMIUM="${FRUITS_CHROMIUM:-$DEBIAN_CHROMIUM}"

if [[ -x "$CHROMIUM" ]]; then
    echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") already installed"
    exit 0
fi

if [[ "$CHROMIUM" != "$DEBIAN_CHROMIUM" ]]; then
    echo "install-browser: FRUITS_CHROMIUM=$CHROMIUM is not an executable file" >&2
    exit 1
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "install-browser: $CHROMIUM not found, and installing it needs root:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium fonts-liberation" >&2
    echo "(or set FRUITS_CHROMIUM to a Chromium binary). The browser tests fail without it." >&2
    exit 1
fi

if ! command -v apt-get >/dev/null; then
    echo "install-browser: no apt-get here: install Chromium with your package manager" >&2
    echo "and set FRUITS_CHROMIUM to its binary. The browser tests fail without it." >&2
    exit 1
fi

echo "install-browser: installing Debian's chromium (and fonts-liberation, for readable screenshots)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium fonts-liberation
"$CHROMIUM" --version
