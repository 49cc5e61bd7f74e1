#!/usr/bin/env bash
# run_cuda_host.sh: the CUDA backend's batch-norm kernels without a GPU. tests/cuda_host/
# translate.py copies the kernels' sources with their launches rewritten, g++ builds them as host
# code against tests/cuda_host/cuda_runtime.h (C++20 threads and barriers standing in for blocks
# and warps), and check_bn_relu compares them with the CPU kernels of the build's backend library.
# Skips (77) without a C++20 g++. A GPU runs the real thing: test_cuda, test_parity, gpu_check.sh.
# usage: run_cuda_host.sh SOURCE_DIR LIBRARY... [LINK FLAG...]   (the CPU backend's library, what it
# needs, and a sanitizer build's -fsanitize flags)
set -u
[ $# -ge 2 ] || { echo "usage: $0 SOURCE_DIR LIBRARY..." >&2; exit 2; }
src=$1 host=$1/tests/cuda_host cuda=$1/backends/cuda
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! echo '#include <barrier>' | g++ -std=c++20 -x c++ -fsyntax-only - 2> /dev/null; then
    echo "no g++ with C++20 <barrier>: skipped"
    exit 77
fi
python3 "$host/translate.py" "$tmp/gen" "$cuda/k_util.cuh" "$cuda/k_channel_sums.cuh" \
    "$cuda/cuda_kernels.h" "$cuda/k_channel.cu" "$cuda/k_ztower.cu" "$cuda/k_norm_relu.cu" || exit 1
g++ -std=c++20 -O1 -pthread -I"$host" -I"$tmp/gen" -I"$src" -o "$tmp/check" \
    "$host/check_bn_relu.cpp" "$host/emu.cpp" -x c++ "$tmp/gen/k_channel.cu" "$tmp/gen/k_ztower.cu" \
    "$tmp/gen/k_norm_relu.cu" -x none "$@" -lm || exit 1
"$tmp/check"
