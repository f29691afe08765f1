#!/usr/bin/env bash
# Runs the whole test suite (unit and end-to-end) after the idempotent set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
