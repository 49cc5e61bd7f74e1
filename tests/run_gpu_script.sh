#!/usr/bin/env bash
# run_gpu_script.sh: what of the GPU check script runs without a GPU. tests/gpu_check.sh parses,
# refuses bad usage (exit 2), and where nvidia-smi fails says there is no GPU and exits 1 having
# run nothing else; tests/make_cifar_subset.py refuses a folder that is not CIFAR-10 by name and,
# where CIFAR-10 is found ($ZNET_DATA or the cache), writes a subset that `znet run` trains on.
# usage: run_gpu_script.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
check=$src/tests/gpu_check.sh

bash -n "$check" || bad "gpu_check.sh does not parse"
zt_expect 2 "usage: .*BUILD_DIR OUT_DIR \[SUBSET_DIR\]" bash "$check"

# a PATH whose nvidia-smi fails: no GPU, exit 1, only the gpu step in the summary
mkdir -p nogpu && printf '#!/bin/sh\nexit 9\n' > nogpu/nvidia-smi && chmod +x nogpu/nvidia-smi
zt_expect 1 "no NVIDIA GPU or driver here" env PATH="$tmp/nogpu:$PATH" bash "$check" \
    "$(dirname "$znet")" results
[ "$(wc -l < results/summary.txt)" -eq 2 ] || bad "steps ran without a GPU: $(cat results/summary.txt)"

# the subset maker
mkdir -p notcifar && printf 'short' > notcifar/data_batch_1.bin
zt_expect 1 "notcifar/data_batch_1.bin: 5 bytes, a CIFAR-10 batch file has" python3 \
    "$src/tests/make_cifar_subset.py" notcifar subset 10 10
cifar=$("$znet" data where cifar10 2> /dev/null | sed -n 's/^cifar10 *\(\/.*\) (.*/\1/p; s/^cifar10 *\(\/[^ ]*\)$/\1/p')
if [ -n "$cifar" ] && [ -f "$cifar/data_batch_1.bin" ]; then
    zt_expect 0 "256 training and 64 test images" python3 "$src/tests/make_cifar_subset.py" \
        "$cifar" subset 256 64
    zt_expect 0 "256 train / 64 test examples of npy" "$znet" run "$src/models/davidnet.znet" \
        --threads 1 --set width=4 --set train.epochs=1 --set train.batch=64 \
        --set 'train.data=npy(layout = "nchw")' --data subset --quiet --no-save
else
    echo "CIFAR-10 not found (znet data where cifar10): the subset's training run is skipped"
fi
zt_end run_gpu_script
