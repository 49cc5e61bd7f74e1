#!/usr/bin/env bash
# run_cuda_cli.sh: --backend cuda and --precision from the command line. Where cuda cannot run
# (no GPU, no driver, built without it), bench and eval exit 1 at once with a message saying
# why; where it can, bench runs. The CPU backend refuses fp16 by name; a bad --precision is a
# usage error (2), and a refused bench prints nothing on stdout. --version's CUDA yes/no agrees. usage: run_cuda_cli.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
model=$src/models/davidnet.znet
why="cannot run here: .*(built without the CUDA backend|module|driver|device|cudaGetDeviceCount)"

"$znet" bench "$model" --backend cuda --steps 1 > out 2>&1
rc=$?
case $rc in
0) echo "cuda runs here: bench ran" ;;
1) grep -Eq "^znet bench: backend cuda $why" out || bad "bench --backend cuda: exit 1 without saying why: $(cat out)"
   zt_expect 1 "^znet: backend cuda $why" "$znet" eval "$model" --backend cuda --weights none.ckpt ;;
*) bad "bench --backend cuda exited $rc: $(cat out)" ;;
esac

"$znet" bench "$model" --precision fp16 --batch 2 --steps 1 > out 2> err
rc=$?
[ $rc -eq 1 ] || bad "bench --precision fp16 on cpu: exit $rc, want 1: $(cat err)"
[ -s out ] && bad "bench --precision fp16 on cpu: printed a header before refusing"
grep -q "cpu backend: --precision fp16 needs the cuda backend" err || bad "no message for fp16 on cpu: $(cat err)"

# --version says what was built in, and agrees with what --backend cuda said
zt_expect 0 "^znet [0-9]+\.[0-9]+\.[0-9]+ \(CUDA (yes|no), MPI (yes|no)(; OpenBLAS kernels [A-Za-z0-9]+)?\)$" "$znet" --version
if grep -q "CUDA no" out; then
    zt_expect 1 "built without the CUDA backend" "$znet" bench "$model" --backend cuda --steps 1
else
    said=$("$znet" bench "$model" --backend cuda --steps 1 2>&1)
    grep -q "built without the CUDA backend" <<<"$said" && bad "--version says CUDA yes, bench says built without it"
fi

zt_expect 2 "needs fp32, fp16 or bf16" "$znet" bench "$model" --precision fp8
# --train-only with --inference-only times nothing
zt_expect 2 "exclude each other" "$znet" bench "$model" --train-only --inference-only
zt_end run_cuda_cli
