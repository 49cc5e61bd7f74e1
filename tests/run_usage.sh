#!/usr/bin/env bash
# run_usage.sh: usage errors of `znet run` and `znet eval` that the diagnostics corpus (which runs
# `znet check`) cannot reach: each exits 2 with a message naming the option, before any data is read.
# usage: run_usage.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"

while IFS='|' read -r args want; do
    # shellcheck disable=SC2086
    zt_expect 2 "$want" "$znet" $args "$src/models/fashion_small.znet" --data none
done <<'CASES'
run --limit 0|--limit needs an integer from 1
run --test-limit 0|--test-limit needs an integer from 1
eval --test-limit 0 --weights x.ckpt|--test-limit needs an integer from 1
run --epochs 0|--epochs needs an integer from 1
run --log-every 0 --log x.jsonl|--log-every needs an integer from 1
run --log-every 5|--log-every writes step records, which only a JSON-lines log holds
run --log-every 5 --log x.csv|give --log FILE.jsonl
CASES
zt_end run_usage
