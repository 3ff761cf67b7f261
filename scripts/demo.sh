#!/usr/bin/env bash
# README command 1: install dependencies, build, and run the main job in a sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec scripts/demo-sandbox.sh
