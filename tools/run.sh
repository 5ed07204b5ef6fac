#!/usr/bin/env bash
# The main job: build, then score a token sequence on the model under models/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
build/r1 score --model models/tiny-v3-fp8 --tokens "0,15,27,300,1024,7,99,512" "$@"
