#!/usr/bin/env bash
# Report benchmark (not a test): `flixops report` on the demo data (100 tweets) and on 20k tweets
# (200 synthetic pages of ../shared/bench/make_pages.py, extracted, loaded and transformed
# locally), alternated in one run; prints each one's median wall time, CPU time and peak RSS, the
# ratio between them, and the page sizes.
# usage: bench/report.sh [PAGES=200] [ROUNDS=7]
set -euo pipefail
cd "$(dirname "$0")/.."
pages="${1:-200}"; rounds="${2:-7}"
shared="${FLIXOPS_SHARED:-$(cd .. && pwd)/shared}"
cache="${FLIXOPS_CACHE:-$HOME/.cache/flixops}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
out="$(pwd)/bench/out/report"
rm -rf "$out" && mkdir -p "$out/demo" "$out/big"

cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/flixops"

(cd "$out/demo" && "$bin" run --demo >/dev/null 2>&1)
python3 "$shared/bench/make_pages.py" "$pages" "$out/pages.jsonl"
printf '[project]\nname = "bench"\n[env.dev]\ntarget = "local"\n' > "$out/big/flixops.toml"
(cd "$out/big" && "$bin" run --replay "$out/pages.jsonl" >/dev/null 2>&1)

python3 bench/measure.py "$rounds" \
  "demo=cd $out/demo && $bin report --out report-{round}.html" \
  "tweets_20k=cd $out/big && $bin report --out report-{round}.html" \
  | tee "$out/results.jsonl"

python3 - "$out" <<'PY'
import json, os, subprocess, sys
out = sys.argv[1]
r = {d["name"]: d for d in map(json.loads, open(f"{out}/results.jsonl"))}
def tweets(d):
    s = json.loads(subprocess.run([os.environ["CARGO_TARGET_DIR"] + "/release/flixops", "report", "-o", "json",
                                   "--out", "report-json.html"], cwd=f"{out}/{d}", capture_output=True, check=True).stdout)
    return s["totals"]["tweets"]
for name, d in (("demo", "demo"), ("tweets_20k", "big")):
    print(f"{name}: {tweets(d)} tweets, report {r[name]['median_wall_s']} s wall, {r[name]['median_cpu_s']} s CPU, "
          f"peak RSS {r[name]['max_rss_mib']} MiB, page {os.path.getsize(f'{out}/{d}/report-0.html') // 1024} KiB")
print(f"20k tweets / demo (wall time, {r['demo']['rounds']} rounds, medians): "
      f"{r['tweets_20k']['median_wall_s'] / r['demo']['median_wall_s']:.2f}x")
PY
