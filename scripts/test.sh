#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run calls it). Installs what the tests need on a
# fresh machine, then runs `cargo test`:
#   - a Python venv with the pinned test peers of tests/requirements.txt (moto, fakesnow),
#     started by the tests on 127.0.0.1 (tests/peers/),
#   - a second venv with the static checkers of tests/scan-requirements.txt (checkov, parliament,
#     python-hcl2), run offline,
#   - nothing else: DuckDB is compiled from the bundled sources, the X API mock is in-process.
# Extra arguments go to cargo test (e.g. scripts/test.sh --test integration extract::); without
# any, the cloud-only feature set (--no-default-features) is tested too.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${FLIXOPS_CACHE:-$HOME/.cache/flixops}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
venv="$cache/venv"

if ! command -v cargo >/dev/null; then
  echo "scripts/test.sh: cargo is not on PATH; install Rust (rustup) first" >&2
  exit 1
fi
# A venv per requirements file, reinstalled only when the file changes.
venv_for() {
  local dir="$1" requirements="$2" want
  if ! "$dir/bin/python" -c 'import sys' 2>/dev/null; then
    python3 -m venv "$dir"
  fi
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ "$(cat "$dir/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$dir/.requirements.sha256"
  fi
}
venv_for "$venv" tests/requirements.txt
venv_for "$cache/scan-venv" tests/scan-requirements.txt
export FLIXOPS_SCAN_PYTHON="$cache/scan-venv/bin/python"
export FLIXOPS_TEST_PYTHON="$venv/bin/python"

cargo test --locked "$@"
# The cloud-only build (the Lambda artifact, CI deploys): everything but the local target, without
# compiling DuckDB; its tests leave out what needs DuckDB and check that `run` says how to get it.
if [ $# -eq 0 ]; then
  cargo test --locked --no-default-features
fi
