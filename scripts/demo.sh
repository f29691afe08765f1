#!/usr/bin/env bash
# The main job end to end on embedded defaults. Does its own (idempotent) set-up first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/scripts/demo.js
