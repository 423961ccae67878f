#!/usr/bin/env bash
# Extraction benchmark (not a test): `flixops extract --replay pages.jsonl --to DIR` against the
# Python baseline (../shared/bench/seed_baseline.py) on the same synthetic pages, side by side in
# one run. Also runs flixops on 4x the pages to show peak RSS stays flat (streaming).
# usage: bench/extract.sh [PAGES=200] [ROUNDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
pages="${1:-200}"; rounds="${2:-5}"
shared="${FLIXOPS_SHARED:-$(cd .. && pwd)/shared}"
cache="${FLIXOPS_CACHE:-$HOME/.cache/flixops}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
venv="$cache/bench-venv"
out="bench/out"; mkdir -p "$out"

# Reinstalled whenever bench/requirements.txt changes, so the baseline runs the pinned releases.
want="$(sha256sum bench/requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt
  echo "$want" > "$venv/.requirements.sha256"
fi
cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/flixops"

python3 "$shared/bench/make_pages.py" "$pages" "$out/pages.jsonl"
python3 "$shared/bench/make_pages.py" "$((pages * 4))" "$out/pages-x4.jsonl"
# The same pages without what the referenced_tweets.id expansion adds (includes.tweets), to measure
# its cost in page bytes and extraction time.
python3 - "$out/pages.jsonl" "$out/pages-noexp.jsonl" <<'PY'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    for line in src:
        page = json.loads(line)
        page.get("includes", {}).pop("tweets", None)
        out.write(json.dumps(page, separators=(",", ":")) + "\n")
PY
rm -rf "$out"/run-*

"$venv/bin/python" bench/measure.py "$rounds" \
  "baseline=$venv/bin/python $shared/bench/seed_baseline.py $out/pages.jsonl $out/run-base-{round}" \
  "flixops=$bin extract --replay $out/pages.jsonl --to $out/run-flixops-{round}" \
  "flixops_x4=$bin extract --replay $out/pages-x4.jsonl --to $out/run-flixops-x4-{round}" \
  "flixops_noexp=$bin extract --replay $out/pages-noexp.jsonl --to $out/run-flixops-noexp-{round}" \
  | tee "$out/results.jsonl"

"$venv/bin/python" - "$out/results.jsonl" "$out/pages.jsonl" "$out/pages-noexp.jsonl" <<'PY'
import json, os, sys
r = {d["name"]: d for d in map(json.loads, open(sys.argv[1]))}
full, bare = os.path.getsize(sys.argv[2]), os.path.getsize(sys.argv[3])
print(f"the referenced_tweets.id expansion: pages {full / bare:.2f}x the bytes ({full} vs {bare}); "
      f"extraction {r['flixops']['median_wall_s'] / r['flixops_noexp']['median_wall_s']:.2f}x the time "
      f"({r['flixops']['median_wall_s']} s vs {r['flixops_noexp']['median_wall_s']} s)")
print(f"speed-up (baseline / flixops wall time, {r['flixops']['rounds']} rounds, medians): "
      f"{r['baseline']['median_wall_s'] / r['flixops']['median_wall_s']:.1f}x")
print(f"CPU time (user + system, medians): flixops {r['flixops']['median_cpu_s']} s, "
      f"baseline {r['baseline']['median_cpu_s']} s")
print(f"flixops peak RSS: {r['flixops']['max_rss_mib']} MiB; at 4x the pages: {r['flixops_x4']['max_rss_mib']} MiB; "
      f"baseline: {r['baseline']['max_rss_mib']} MiB")
PY
