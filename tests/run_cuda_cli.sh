#!/usr/bin/env bash
# run_cuda_cli.sh: --backend cuda and --precision from the command line. Where cuda cannot run
# (no GPU, no driver, built without it), bench and eval exit 1 at once with a message saying
# why; where it can, bench runs. The CPU backend refuses fp16 by name; a bad --precision is a
# usage error (2), and a refused bench prints nothing on stdout. usage: run_cuda_cli.sh ZNET SOURCE_DIR
set -u
znet=$1
model=$2/models/davidnet.znet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/out"; exit 1; }
why="cannot run here: .*(built without the CUDA backend|module|driver|device|cudaGetDeviceCount)"

"$znet" bench "$model" --backend cuda --steps 1 > "$tmp/out" 2>&1
rc=$?
case $rc in
0) echo "cuda runs here: bench ran" ;;
1) grep -Eq "^znet bench: backend cuda $why" "$tmp/out" || fail "bench --backend cuda: exit 1 without saying why"
   "$znet" eval "$model" --backend cuda --weights "$tmp/none.ckpt" > "$tmp/out" 2>&1
   [ $? -eq 1 ] || fail "eval --backend cuda: want exit 1"
   grep -Eq "^znet: backend cuda $why" "$tmp/out" || fail "eval --backend cuda: no reason" ;;
*) fail "bench --backend cuda exited $rc" ;;
esac

"$znet" bench "$model" --precision fp16 --batch 2 --steps 1 > "$tmp/out" 2> "$tmp/err"
[ $? -eq 1 ] || fail "bench --precision fp16 on cpu: want exit 1"
[ -s "$tmp/out" ] && fail "bench --precision fp16 on cpu: printed a header before refusing"
mv "$tmp/err" "$tmp/out"
grep -q "cpu backend: --precision fp16 needs the cuda backend" "$tmp/out" || fail "no message for fp16 on cpu"

"$znet" bench "$model" --precision fp8 > "$tmp/out" 2>&1
[ $? -eq 2 ] || fail "--precision fp8: want exit 2"
grep -q "needs fp32, fp16 or bf16" "$tmp/out" || fail "--precision fp8: no message"

"$znet" bench "$model" --train-only --inference-only > "$tmp/out" 2>&1
[ $? -eq 2 ] || fail "--train-only with --inference-only (times nothing): want exit 2"
grep -q "exclude each other" "$tmp/out" || fail "--train-only with --inference-only: no message"
echo "ok"
