#!/usr/bin/env bash
# driftsum side by side with the tools people use today, on the same
# generated pairs (made by `driftsum bench`: the realistic table shape), one
# run after the other:
#
#   SQLite -> SQLite         driftsum diff  vs  sqldiff (Debian: sqlite3-tools)
#   PostgreSQL -> PostgreSQL driftsum diff  vs  reladiff (PyPI), default settings
#   PostgreSQL -> MySQL      driftsum diff  vs  reladiff
#
# For each tool: wall time (median, min and max of RUNS alternating runs),
# peak memory of the tool's process (/usr/bin/time %M, max over the runs),
# whether it found exactly the injected differences (same keys, same kinds),
# and the ratio of driftsum's time to the tool's (below 1: driftsum is
# faster), taken run by run (driftsum's run i over the tool's run i, right
# after it), so a burst of load from elsewhere hits both sides of a ratio:
# its median and spread (min-max) are reported.
#
# Usage: benches/peers.sh [ROWS[,ROWS...]] [DIFFS]   (default 1000000 10)
# Environment:
#   RUNS=5                  runs per tool (at least 5 for a published figure)
#   PAIRS=sqlite,pg-pg,pg-mysql
#   DRIFTSUM_TEST_POSTGRES  server for the PostgreSQL pairs (skipped if unset)
#   DRIFTSUM_TEST_MYSQL     server for the MySQL replica (skipped if unset)
#   BIN=path                a driftsum binary to use (default: build
#                           target/release/driftsum)
#   INSTALL=1               install missing tools (see below); otherwise a
#                           missing tool's pairs are skipped with the reason
#
# With INSTALL=1: sqldiff with apt-get (when run as root), reladiff and its
# drivers (psycopg2-binary, mysql-connector-python) from PyPI into a virtual
# environment under target/peers/venv. reladiff is taken from PATH first,
# then from that environment. Generated SQLite files are kept in
# target/peers/data and reused; server tables are dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${1:-1000000}"
DIFFS="${2:-10}"
RUNS="${RUNS:-5}"
PAIRS="${PAIRS:-sqlite,pg-pg,pg-mysql}"
PG="${DRIFTSUM_TEST_POSTGRES:-}"
MY="${DRIFTSUM_TEST_MYSQL:-}"
INSTALL="${INSTALL:-0}"
OUT=target/peers
VENV="$OUT/venv"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

say() { printf '%s\n' "$*" >&2; }
want() { [[ ",$PAIRS," == *",$1,"* ]]; }

if [[ -z "${BIN:-}" ]]; then
  BIN=target/release/driftsum
  say "building driftsum (release)"
  cargo build --release --locked --quiet --bin driftsum
fi
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

SKIP=()
if want sqlite && ! command -v sqldiff >/dev/null; then
  if [[ $INSTALL == 1 && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing sqldiff (sqlite3-tools)"
    apt-get install -y -qq sqlite3-tools >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3-tools >/dev/null; }
  else
    SKIP+=("SQLite → SQLite: skipped, sqldiff is not installed (install sqlite3-tools, or run with INSTALL=1 as root)")
    PAIRS="${PAIRS//sqlite/}"
  fi
fi
RELADIFF=""
if { want pg-pg || want pg-mysql; } && [[ -n "$PG" ]]; then
  if command -v reladiff >/dev/null; then
    RELADIFF="$(command -v reladiff)"
  elif [[ -x "$VENV/bin/reladiff" ]]; then
    RELADIFF="$VENV/bin/reladiff"
  elif [[ $INSTALL == 1 ]]; then
    say "installing reladiff into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q reladiff psycopg2-binary mysql-connector-python
    RELADIFF="$VENV/bin/reladiff"
  else
    SKIP+=("PostgreSQL pairs: skipped, reladiff is not installed (not on PATH nor in $VENV; run with INSTALL=1 to install it there)")
    PAIRS="${PAIRS//pg-pg/}"
    PAIRS="${PAIRS//pg-mysql/}"
  fi
fi
for m in ${SKIP[@]+"${SKIP[@]}"}; do say "$m"; done

# --- parsers: each turns a tool's output into sorted "kind key" lines ------
# (missing: in the source only; extra: in the replica only; changed: both)

parse_driftsum() {
  python3 -c '
import json, sys
doc = json.load(sys.stdin)
for t in doc["tables"]:
    if t.get("error"):
        print("error", t["error"].replace("\n", " "))
    for d in t.get("differences", []):
        print(d["kind"], d["key"]["id"])
' | sort -k2,2n -k1,1
}

# sqldiff prints SQL turning the source into the replica.
parse_sqldiff() {
  sed -nE \
    -e 's/^UPDATE .* WHERE id=(-?[0-9]+);$/changed \1/p' \
    -e 's/^DELETE FROM .* WHERE id=(-?[0-9]+);$/missing \1/p' \
    -e 's/^INSERT INTO [^(]*\([^)]*\) VALUES\((-?[0-9]+),.*$/extra \1/p' |
    sort -k2,2n -k1,1
}

# reladiff --json prints one ["-"|"+", [values...]] per differing row
# version: "-" from the first table, "+" from the second; both for a key
# means changed. (It wraps lines at the terminal width, hence COLUMNS.)
parse_reladiff() {
  python3 -c '
import json, sys
seen = {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("["):
        continue
    sign, row = json.loads(line)
    seen.setdefault(int(row[0]), set()).add(sign)
for k, s in seen.items():
    print("changed" if len(s) == 2 else ("missing" if "-" in s else "extra"), k)
' | sort -k2,2n -k1,1
}

# --- measuring -------------------------------------------------------------

# run_tool NAME PARSER EXPECTED OKCODES CMD... : one timed run; appends
# "seconds peak_kib exact" to $WORK/NAME.runs.
run_tool() {
  local name="$1" parser="$2" expected="$3" ok="$4"
  shift 4
  local t0 t1 rc=0
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  t1=$(date +%s%N)
  if [[ " $ok " != *" $rc "* ]]; then
    say "$name exited with $rc:"; tail -n 5 "$WORK/$name.err" >&2
  fi
  "$parser" <"$WORK/$name.out" >"$WORK/$name.found" || true
  local exact=no
  if [[ " $ok " == *" $rc "* ]] && cmp -s "$WORK/$name.found" <(sort -k2,2n -k1,1 "$expected"); then
    exact=yes
  fi
  echo "$(( (t1 - t0) / 1000000 )) $(tail -n 1 "$WORK/$name.time") $exact" >>"$WORK/$name.runs"
}

# summary NAME -> "median min max peak_mib exact(all runs)" (seconds)
summary() {
  sort -n "$WORK/$1.runs" | awk '
    { t[NR] = $1; if ($2 > m) m = $2; if ($3 != "yes") bad = 1 }
    END { printf "%.3f %.3f %.3f %.1f %s\n", t[int((NR + 1) / 2)] / 1000, t[1] / 1000, t[NR] / 1000, m / 1024, bad ? "no" : "yes" }'
}

# ratios A B -> "median min max" of A's run i over B's run i
ratios() {
  paste -d' ' "$WORK/$1.runs" "$WORK/$2.runs" | awk '{ printf "%.4f\n", $1 / $4 }' | sort -n | awk '
    { r[NR] = $1 } END { printf "%.2f %.2f %.2f\n", r[int((NR + 1) / 2)], r[1], r[NR] }'
}

ROWS_TABLE=()

# compare PAIR EXPECTED DRIFTSUM_ARGS... -- PEER_NAME PEER_PARSER PEER_OK PEER_CMD...
compare() {
  local pair="$1" expected="$2"
  shift 2
  local ds=() peer
  while [[ "$1" != "--" ]]; do ds+=("$1"); shift; done
  shift
  local peer="$1" pparser="$2" pok="$3"
  shift 3
  rm -f "$WORK"/*.runs
  for ((r = 1; r <= RUNS; r++)); do
    say "$ROWS rows, $pair: run $r of $RUNS"
    run_tool driftsum parse_driftsum "$expected" "0 1" "$BIN" diff "${ds[@]}" --format json
    run_tool "$peer" "$pparser" "$expected" "$pok" "$@"
  done
  read -r dt dlo dhi dm dx < <(summary driftsum)
  read -r pt plo phi pm px < <(summary "$peer")
  read -r rmed rlo rhi < <(ratios driftsum "$peer")
  ROWS_TABLE+=("| $ROWS | $pair | driftsum | $dt ($dlo–$dhi) | $dm | $dx | |")
  ROWS_TABLE+=("| $ROWS | $pair | $peer | $pt ($plo–$phi) | $pm | $px | **$rmed** ($rlo–$rhi) |")
  if [[ $dx != yes || $px != yes ]]; then
    say "$pair: findings differ from the injected differences; see below"
    for n in driftsum "$peer"; do
      say "  $n found: $(head -c 400 "$WORK/$n.found" | tr '\n' ';')"
    done
    say "  injected:   $(head -c 400 "$expected" | tr '\n' ';')"
  fi
}

# Prints the data line for one generated pair (fields: rows diffs source
# source_table replica replica_table expected).
generate() {
  "$BIN" bench --sizes "$ROWS" --diffs "$DIFFS" --out "$OUT" --generate-only "$@" | grep -v '^#'
}

COLS=(-k id -c name -c qty -c price -c amount -c created -c note)
pg_for_reladiff="${PG/#postgres:/postgresql:}"
cleanup_servers() {
  local py=python3
  [[ -x "$VENV/bin/python" ]] && py="$VENV/bin/python"
  PG="$PG" MY="$MY" "$py" - <<'EOF' || true
import os, urllib.parse
if os.environ.get("PG"):
    import psycopg2
    c = psycopg2.connect(os.environ["PG"]); c.autocommit = True
    c.cursor().execute("DROP SCHEMA IF EXISTS driftsum_bench CASCADE")
if os.environ.get("MY"):
    import mysql.connector
    u = urllib.parse.urlparse(os.environ["MY"])
    c = mysql.connector.connect(host=u.hostname, port=u.port or 3306, user=u.username,
                                password=u.password or "", database=u.path.lstrip("/"))
    cur = c.cursor()
    cur.execute("SHOW TABLES LIKE 'driftsum\\_bench\\_%'")
    for (t,) in cur.fetchall():
        cur.execute(f"DROP TABLE `{t}`")
EOF
}

for ROWS in ${SIZES//,/ }; do
  if want sqlite; then
    IFS=$'\t' read -r _ _ src _ rep _ exp < <(generate)
    compare "SQLite → SQLite" "$exp" --source "sqlite:$src" --target "sqlite:$rep" -- \
      sqldiff parse_sqldiff "0" sqldiff --table bench "$src" "$rep"
  fi

  if want pg-pg; then
    if [[ -z "$PG" ]]; then
      say "PostgreSQL → PostgreSQL: skipped (DRIFTSUM_TEST_POSTGRES is not set)"
    else
      say "PostgreSQL → PostgreSQL: writing the tables"
      IFS=$'\t' read -r _ _ _ st _ rt exp < <(generate --engine postgres --source-url "$PG" \
        --replica-engine postgres --replica-url "$PG" --keep)
      compare "PostgreSQL → PostgreSQL" "$exp" --source "$PG" --target "$PG" --table "$st=$rt" -- \
        reladiff parse_reladiff "0" env COLUMNS=100000 "$RELADIFF" "$pg_for_reladiff" "$st" "$pg_for_reladiff" "$rt" "${COLS[@]}" --json
      cleanup_servers
    fi
  fi

  if want pg-mysql; then
    if [[ -z "$PG" || -z "$MY" ]]; then
      say "PostgreSQL → MySQL: skipped (DRIFTSUM_TEST_POSTGRES or DRIFTSUM_TEST_MYSQL is not set)"
    else
      say "PostgreSQL → MySQL: writing the tables"
      IFS=$'\t' read -r _ _ _ st _ rt exp < <(generate --engine postgres --source-url "$PG" \
        --replica-engine mysql --replica-url "$MY" --keep)
      compare "PostgreSQL → MySQL" "$exp" --source "$PG" --target "$MY" --table "$st=$rt" -- \
        reladiff parse_reladiff "0" env COLUMNS=100000 "$RELADIFF" "$pg_for_reladiff" "$st" "$MY" "$rt" "${COLS[@]}" --json
      cleanup_servers
    fi
  fi
done

echo
echo "$DIFFS differences; $RUNS alternating runs each; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); commit $COMMIT"
for m in ${SKIP[@]+"${SKIP[@]}"}; do echo "$m"; done
echo
echo "| rows | pair | tool | wall s, median (min–max) | peak MiB | found exactly the injected differences | driftsum ÷ tool, per run: median (min–max) |"
echo "|---:|---|---|---:|---:|---|---:|"
printf '%s\n' ${ROWS_TABLE[@]+"${ROWS_TABLE[@]}"}
