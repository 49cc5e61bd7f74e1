#!/usr/bin/env bash
# bench_levers.sh: ms per training step of each issue-19 lever, interleaved rounds, the load
# average beside each line (docs/performance.md, "What each lever gave"). Each "new" line turns
# one lever off; OLD is a binary from before the levers (its OpenBLAS pick, then SkylakeX's).
# Not part of the build or tests: a benchmark, run on a quiet machine.
# usage: tests/bench_levers.sh OLD_ZNET NEW_ZNET [ROUNDS]      (WIDTHS="64 16" by default)
set -u
[ $# -ge 2 ] || { echo "usage: $0 OLD_ZNET NEW_ZNET [ROUNDS]" >&2; exit 2; }
old=$1 new=$2 rounds=${3:-2}
cd "$(dirname "$0")/.."
bench() { # LABEL STEPS [VAR=VALUE...] ZNET bench MODEL ARGS...
    local label=$1 steps=$2 load line
    shift 2
    load=$(cut -d' ' -f1 /proc/loadavg)
    line=$(env "$@" --steps "$steps" --batch 128 --threads 2 --train-only 2>&1 | grep "training:")
    printf "%-5s | %-32s | %s\n" "$load" "$label" "$(echo "$line" | sed 's/ *training: *//; s/, .*GFLOP.*//')"
}
for r in $(seq "$rounds"); do
    for w in ${WIDTHS:-64 16}; do
        s=$([ "$w" = 64 ] && echo 3 || echo 10)
        m=(models/davidnet.znet --set width=$w)
        bench "dn$w old, OpenBLAS's pick" $s "$old" bench "${m[@]}"
        bench "dn$w old, SkylakeX" $s OPENBLAS_CORETYPE=SkylakeX "$old" bench "${m[@]}"
        bench "dn$w new, ZNET_WINOGRAD=0" $s ZNET_WINOGRAD=0 "$new" bench "${m[@]}"
        bench "dn$w new, ZNET_CPU_PATH=avx2" $s ZNET_CPU_PATH=avx2 "$new" bench "${m[@]}"
        bench "dn$w new, no fuse_bn_relu" $s "$new" bench "${m[@]}" --no-pass fuse_bn_relu
        bench "dn$w new, every lever" $s "$new" bench "${m[@]}"
    done
    m=(models/davidnet_zee.znet --set width=16)
    bench "zee16 old, SkylakeX" 10 OPENBLAS_CORETYPE=SkylakeX "$old" bench "${m[@]}"
    bench "zee16 new, every lever" 10 "$new" bench "${m[@]}"
    bench "zee16 new, no fuse_bn_relu" 10 "$new" bench "${m[@]}" --no-pass fuse_bn_relu
done
