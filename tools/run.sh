#!/usr/bin/env bash
# The main job: build, then chat with the embedded demo model (models/r1-demo). Extra arguments
# go to `r1 chat` (e.g. --hide-thinking, --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
exec build/r1 chat "$@"
