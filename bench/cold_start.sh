#!/usr/bin/env bash
# Lambda cold-start benchmark (not a test): the time from exec to the first invocation's response,
# and peak RSS, of flixops builds side by side, each serving one real invocation (one extraction
# into moto's S3 from a local X API mock) through a mock of the Lambda Runtime API on 127.0.0.1
# (bench/cold_start.py). Builds alternate within each round.
# usage: bench/cold_start.sh FULL_BINARY CLOUD_BINARY [ROUNDS=11]
#   e.g. cargo build --release && cargo build --release --no-default-features --target-dir target/cloud
#        bench/cold_start.sh target/release/flixops target/cloud/release/flixops
set -euo pipefail
cd "$(dirname "$0")/.."
full="${1:?usage: bench/cold_start.sh FULL_BINARY CLOUD_BINARY [ROUNDS]}"
cloud="${2:?usage: bench/cold_start.sh FULL_BINARY CLOUD_BINARY [ROUNDS]}"
rounds="${3:-11}"
venv="${FLIXOPS_CACHE:-$HOME/.cache/flixops}/venv"
# moto and boto3: the test peers' venv, made as scripts/test.sh makes it.
if ! "$venv/bin/python" -c 'import moto, boto3' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
fi
exec "$venv/bin/python" bench/cold_start.py --rounds "$rounds" "full=$full" "cloud=$cloud"
