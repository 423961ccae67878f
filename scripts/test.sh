#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run calls it). Installs what the tests need on a
# fresh machine, then runs `cargo test`:
#   - a Python venv with the pinned test peers of tests/requirements.txt (moto, fakesnow),
#     started by the tests on 127.0.0.1 (tests/peers/),
#   - nothing else: DuckDB is compiled from the bundled sources, the X API mock is in-process.
# Extra arguments go to cargo test (e.g. scripts/test.sh --test extract).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${FLIXOPS_CACHE:-$HOME/.cache/flixops}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
venv="$cache/venv"

if ! command -v cargo >/dev/null; then
  echo "scripts/test.sh: cargo is not on PATH; install Rust (rustup) first" >&2
  exit 1
fi
if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  python3 -m venv "$venv"
fi
want="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$venv/.requirements.sha256"
fi
export FLIXOPS_TEST_PYTHON="$venv/bin/python"

cargo test --locked "$@"
