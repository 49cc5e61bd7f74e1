#!/usr/bin/env bash
# CI leg: the CPU kernel tests again on each kernel path this CPU has (ZNET_CPU_PATH=portable,
# avx2, avx512; docs/testing.md, "Kernel paths"), each under the OpenBLAS kernels picked for the
# CPU and under Haswell's, so a test that holds on one path only, or on one BLAS only, fails here.
# Uses the README's build in build/. A path this CPU lacks is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
tests='test_cpu_kernels|test_cpu_conv|test_winograd|test_cpu_backend|test_gradcheck|test_parity|check_backends'
has=$(build/znet --version | grep '^cpu kernel paths:')
ran=0
for path in portable avx2 avx512; do
  if ! grep -qw "$path" <<<"${has%%(*}"; then
    echo "kernel paths: skipping $path: this CPU lacks its instructions ($has)"
    continue
  fi
  for core in default Haswell; do
    if [ "$core" = Haswell ] && ! grep -qw avx2 /proc/cpuinfo; then
      echo "kernel paths: skipping $path under OpenBLAS Haswell: this CPU has no avx2"
      continue
    fi
    blas=()
    [ "$core" = Haswell ] && blas=(OPENBLAS_CORETYPE=Haswell)
    echo "kernel paths: ZNET_CPU_PATH=$path, OpenBLAS core $core"
    env ZNET_CPU_PATH=$path "${blas[@]}" ctest --test-dir build --output-on-failure -R "$tests" -j2
  done
  ran=$((ran + 1))
done
echo "kernel paths: the CPU kernel tests passed on $ran paths"
