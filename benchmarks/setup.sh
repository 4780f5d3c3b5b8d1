#!/usr/bin/env bash
# Installs the load generator used by benchmarks/run.py, and valgrind for benchmarks/instructions.py
# (Debian/Ubuntu, run as root).
set -euo pipefail
missing=""
command -v wrk >/dev/null || missing="$missing wrk"
command -v valgrind >/dev/null || missing="$missing valgrind"
if [ -n "$missing" ]; then
  apt-get update -qq && apt-get install -y -qq $missing
fi
wrk --version 2>&1 | head -n 1 || true
