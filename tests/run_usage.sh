#!/usr/bin/env bash
# run_usage.sh: usage errors of `znet run` and `znet eval` that the diagnostics corpus (which runs
# `znet check`) cannot reach: each exits 2 with a message naming the option, before any data is read;
# and ZNET_CPU_PATH, refused (exit 2) or named in bench's header.
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

# ZNET_CPU_PATH is part of the command line: a value naming no kernel path exits 2 (for run and bench)
zt_expect 2 "ZNET_CPU_PATH=avx9: no such kernel path" env ZNET_CPU_PATH=avx9 "$znet" run \
    "$src/models/fashion_small.znet" --data none
zt_expect 2 "ZNET_CPU_PATH=AVX2: no such kernel path" env ZNET_CPU_PATH=AVX2 "$znet" bench --steps 1 \
    "$src/models/fashion_small.znet"
# a path this CPU lacks exits 2 too, naming the path it would run; one it has runs and is named
for path in portable avx2 avx512; do
    if "$znet" --version | grep -q "^cpu kernel paths:.* $path\b"; then
        zt_expect 0 "kernel path $path" env ZNET_CPU_PATH=$path "$znet" bench --steps 1 --batch 4 \
            --train-only "$src/models/fashion_small.znet"
    else
        zt_expect 2 "ZNET_CPU_PATH=$path: this CPU lacks the $path instructions" env ZNET_CPU_PATH=$path \
            "$znet" bench --steps 1 "$src/models/fashion_small.znet"
    fi
done
zt_end run_usage
