#!/usr/bin/env bash
# Builds the Lambda package for one architecture: the cloud-only flixops (`--no-default-features`,
# without DuckDB) in the `lambda` profile (the release build, stripped, for size, aborting on a
# panic: see Cargo.toml), as `bootstrap` in flixops-lambda-<arch>.zip,
# with a .sha256 in cargo-dist's format (`<hex> *<name>`). Run it on a machine of that architecture
# whose glibc is at most 2.34 (provided.al2023's): Amazon Linux 2023, or a manylinux_2_28 container
# as .github/workflows/lambda.yml does. `flixops deploy --artifact` checks the result again.
# usage: scripts/lambda-package.sh x86_64|arm64 [OUT_DIR=target/distrib]
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:?usage: scripts/lambda-package.sh x86_64|arm64 [OUT_DIR]}"
out="${2:-target/distrib}"
case "$arch" in
  x86_64) machine=x86_64 ;;
  arm64) machine=aarch64 ;;
  *) echo "scripts/lambda-package.sh: unknown Lambda architecture \`$arch\`: x86_64 or arm64" >&2; exit 2 ;;
esac
if [ "$(uname -m)" != "$machine" ]; then
  echo "scripts/lambda-package.sh: this machine is $(uname -m); build the $arch package on $machine" >&2
  exit 2
fi
cargo build --profile lambda --locked --no-default-features
binary="${CARGO_TARGET_DIR:-target}/lambda/flixops"
name="flixops-lambda-$arch.zip"
mkdir -p "$out"
python="$(command -v python3 || ls /opt/python/cp3*/bin/python | tail -n 1)"
# One entry, `bootstrap`, executable, with a fixed time: the same binary gives the same zip.
"$python" - "$binary" "$out/$name" <<'PY'
import sys, zipfile
entry = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
entry.external_attr = 0o100755 << 16
entry.compress_type = zipfile.ZIP_DEFLATED
with open(sys.argv[1], "rb") as binary, zipfile.ZipFile(sys.argv[2], "w") as package:
    package.writestr(entry, binary.read())
PY
(cd "$out" && printf '%s *%s\n' "$(sha256sum "$name" | cut -d' ' -f1)" "$name" > "$name.sha256")
echo "$out/$name: $(wc -c < "$out/$name") bytes"
