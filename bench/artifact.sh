#!/usr/bin/env bash
# What packaging a binary as the Lambda's code costs (a benchmark, not a test): for each binary, its
# size, its zipped size (one deflated `bootstrap`, as flixops zips it), and the time `flixops plan
# --artifact BINARY` spends before its first network call (reading, checking, zipping and hashing
# the package: the plan then stops at once on an unreachable endpoint), side by side with a tiny
# package, which gives the rest of the startup.
# usage: bench/artifact.sh FLIXOPS NAME=BINARY [NAME=BINARY ...]   (ROUNDS=7 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
flixops="$(realpath "${1:?usage: bench/artifact.sh FLIXOPS NAME=BINARY ...}")"; shift
rounds="${ROUNDS:-7}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
printf '[project]\nname = "bench"\n[env.prod]\ntarget = "aws-snowflake"\nregion = "us-east-1"\n' > "$work/flixops.toml"
# A tiny Linux executable: an ELF header and nothing Lambda would need more.
python3 - "$work/tiny" <<'PY'
import struct, sys
header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)
open(sys.argv[1], "wb").write(header)
PY
printf '%-12s %10s %10s\n' binary "MiB" "zip MiB"
for pair in "$@"; do
  name="${pair%%=*}"; binary="$(realpath "${pair#*=}")"
  python3 - "$name" "$binary" <<'PY'
import io, os, sys, zipfile
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    z.write(sys.argv[2], "bootstrap")
print(f"{sys.argv[1]:<12} {os.path.getsize(sys.argv[2]) / 2**20:>10.1f} {len(buffer.getvalue()) / 2**20:>10.1f}")
PY
done
plan="cd $work && AWS_ENDPOINT_URL=http://127.0.0.1:9 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x SNOWFLAKE_HOME=/nonexistent \
  FLIXOPS_CONNECT_TIMEOUT_SECS=1 $flixops plan --env prod --artifact"
commands=("tiny=$plan $work/tiny >/dev/null 2>&1 || true")
for pair in "$@"; do commands+=("${pair%%=*}=$plan $(realpath "${pair#*=}") >/dev/null 2>&1 || true"); done
python3 bench/measure.py "$rounds" "${commands[@]}"
