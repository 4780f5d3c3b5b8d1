#!/usr/bin/env bash
# Headless Chromium for the dashboard's browser tests (tests/integration/test_dashboard.py), from
# Debian's packages: Playwright's Python package drives this binary; its own browser download is not
# used (and cannot reach its CDN here). Idempotent: does nothing when the packages are installed.
# Run as root (CI does), or with sudo.
set -euo pipefail

PACKAGES=(chromium fonts-liberation fonts-dejavu-core)

installed() {
    dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null | grep -c '^install ok installed$' || true
}

if [ "$(installed)" -eq "${#PACKAGES[@]}" ] && command -v chromium >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser.sh: needs root to apt-get install ${PACKAGES[*]}: sudo bash $0" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
chromium --version
