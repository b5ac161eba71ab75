#!/usr/bin/env bash
# What the key's type costs a PostgreSQL <-> PostgreSQL diff: the same rows
# (`k`, `v text`) keyed by `bigint`, by `numeric` (`g * 1.5`, whose key
# order is its text's, no index range), and by text in a linguistic
# collation (ICU `und-x-icu`, else `en_US.utf8`; byte order it is not), each
# table copied with DIFFS rows changed, compared by `driftsum diff` RUNS
# times, the three keys alternating run by run. Reports per key the wall
# time (median, min-max), the rows driftsum read from each side, the
# sequential scans the server made for all the runs, and the ratio of its
# median to bigint's.
#
# Usage: benches/keys.sh [ROWS] [DIFFS]     (default 1000000 50)
# Environment:
#   RUNS=5                  runs per key
#   DRIFTSUM_TEST_POSTGRES  the server (required)
#   BIN=path                a driftsum binary (default: build
#                           target/release/driftsum)
# Tables live in schema `driftsum_keys`, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS="${1:-1000000}"
DIFFS="${2:-50}"
RUNS="${RUNS:-5}"
PG="${DRIFTSUM_TEST_POSTGRES:?set DRIFTSUM_TEST_POSTGRES to a PostgreSQL URL}"
SCHEMA=driftsum_keys
WORK="$(mktemp -d)"
trap 'psql -q "$PG" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

say() { printf '%s\n' "$*" >&2; }
sql() { psql -q -v ON_ERROR_STOP=1 -At "$PG" -c "$1"; }

if [[ -z "${BIN:-}" ]]; then
  BIN=target/release/driftsum
  say "building driftsum (release)"
  cargo build --release --locked --quiet --bin driftsum
fi
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

COLLATION=""
for c in und-x-icu en_US.utf8; do
  if sql "SELECT 'x' COLLATE \"$c\"" >/dev/null 2>&1; then
    COLLATION="$c"
    break
  fi
done
[[ -n "$COLLATION" ]] || { say "the server has neither und-x-icu nor en_US.utf8"; exit 2; }

# Every STEP-th row changed in the copy: DIFFS scattered rows.
STEP=$(( ROWS / DIFFS ))
make_pair() { # name key-type key-of-g
  say "writing $SCHEMA.$1_a and $SCHEMA.$1_b ($ROWS rows, key $2)"
  sql "CREATE TABLE $SCHEMA.$1_a (k $2 PRIMARY KEY, v text NOT NULL);
       INSERT INTO $SCHEMA.$1_a SELECT $3, 'value ' || g FROM generate_series(1, $ROWS) g;
       CREATE TABLE $SCHEMA.$1_b (k $2 PRIMARY KEY, v text NOT NULL);
       INSERT INTO $SCHEMA.$1_b SELECT $3, CASE WHEN g % $STEP = 7 THEN 'changed ' ELSE 'value ' END || g
         FROM generate_series(1, $ROWS) g;"
  sql "VACUUM ANALYZE $SCHEMA.$1_a"
  sql "VACUUM ANALYZE $SCHEMA.$1_b"
}
sql "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" 2>/dev/null
sql "CREATE SCHEMA $SCHEMA"
make_pair int bigint g
make_pair num numeric 'g * 1.5'
make_pair txt "text COLLATE \"$COLLATION\"" "'key-' || g"

seq_scans() { # name
  sql "SELECT pg_stat_force_next_flush()" >/dev/null 2>&1 || true
  sql "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables
       WHERE schemaname = '$SCHEMA' AND relname IN ('$1_a', '$1_b')"
}
declare -A SCANS0
for k in int num txt; do SCANS0[$k]=$(seq_scans $k); done

for i in $(seq 1 "$RUNS"); do
  for k in int num txt; do
    /usr/bin/time -f "%e" -o "$WORK/time" "$BIN" diff --source "$PG" --target "$PG" \
      --table "$SCHEMA.${k}_a=$SCHEMA.${k}_b" --format json >"$WORK/out.json" 2>/dev/null || true
    python3 - "$WORK/out.json" "$(tail -n 1 "$WORK/time")" "$k" >>"$WORK/runs" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))["tables"][0]
s = t["stats"]
print(sys.argv[3], sys.argv[2], len(t["differences"]), s["source_rows_read"], s["target_rows_read"])
EOF
  done
done
sleep 1
for k in int num txt; do echo "$k $(( $(seq_scans $k) - SCANS0[$k] ))" >>"$WORK/scans"; done

python3 - "$WORK/runs" "$WORK/scans" "$ROWS" "$DIFFS" "$RUNS" "$COMMIT" "$COLLATION" <<'EOF'
import statistics, sys
runs, scans = {}, {}
for line in open(sys.argv[1]):
    k, t, d, a, b = line.split()
    runs.setdefault(k, []).append((float(t), int(d), int(a), int(b)))
for line in open(sys.argv[2]):
    k, n = line.split()
    scans[k] = int(n)
rows, diffs, n, commit, coll = sys.argv[3:8]
names = {"int": "bigint", "num": "numeric", "txt": f'text COLLATE "{coll}"'}
print(f"driftsum {commit}: PostgreSQL <-> PostgreSQL, {rows} rows, {diffs} changed, {n} runs per key")
print("| key | median s | min-max s | found | rows read (source / target) | sequential scans, all runs | × bigint |")
print("|---|---:|---:|---:|---:|---:|---:|")
base = statistics.median(t for t, *_ in runs["int"])
for k in ["int", "num", "txt"]:
    ts = [t for t, *_ in runs[k]]
    m = statistics.median(ts)
    _, d, a, b = runs[k][-1]
    print(f"| {names[k]} | {m:.3f} | {min(ts):.3f}-{max(ts):.3f} | {d} | {a:,} / {b:,} | {scans[k]} | {m / base:.2f} |")
EOF
