#!/usr/bin/env bash
# Sets up, builds and runs every test: scripts/test.sh [PRESET] [ctest arguments...]
# PRESET is one of debug (default), release, asan, tsan (see CMakePresets.json).
set -euo pipefail
cd "$(dirname "$0")/.."

preset="${1:-debug}"
shift || true

scripts/setup-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" -j"$(nproc)" "$@"
