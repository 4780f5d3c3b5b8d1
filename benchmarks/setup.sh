#!/usr/bin/env bash
# Installs the load generator used by benchmarks/run.py (Debian/Ubuntu, run as root).
set -euo pipefail
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
wrk --version 2>&1 | head -n 1 || true
