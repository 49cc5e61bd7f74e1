#!/usr/bin/env bash
# run_usage.sh: usage errors of `znet run` and `znet eval` that the diagnostics corpus (which runs
# `znet check`) cannot reach: each exits 2 with a message naming the option, before any data is read.
# usage: run_usage.sh ZNET SOURCE_DIR
set -u
znet=$1
model=$2/models/fashion_small.znet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/out"; exit 1; }

while IFS='|' read -r args want; do
    # shellcheck disable=SC2086
    "$znet" $args "$model" --data "$tmp/none" > "$tmp/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "znet $args: want exit 2, got $rc"
    grep -q -- "$want" "$tmp/out" || fail "znet $args: no message '$want'"
done <<'CASES'
run --limit 0|--limit needs an integer from 1
run --test-limit 0|--test-limit needs an integer from 1
eval --test-limit 0 --weights x.ckpt|--test-limit needs an integer from 1
run --epochs 0|--epochs needs an integer from 1
CASES
echo "ok"
