#!/usr/bin/env bash
# CI leg: the fast CPU tests again under other OpenBLAS kernel sets than the one it picks for this
# CPU, so a test that asserts bits a BLAS kernel decides fails here, not on someone else's machine
# (docs/testing.md, "A portable suite"). Uses the README's build in build/; diag_prefixes (label
# slow) calls no BLAS and is left out. A core type this CPU cannot run is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
needs() { # core type -> the CPU flag its kernels need
  case $1 in Haswell) echo avx2 ;; Sandybridge) echo avx ;; *) echo sse2 ;; esac
}
ran=0
for core in ${ZNET_CI_CORETYPES:-Haswell Sandybridge Nehalem}; do
  if ! grep -qw "$(needs "$core")" <<<"$flags"; then
    echo "coretypes: skipping $core: this CPU has no $(needs "$core")"
    continue
  fi
  picked=$(OPENBLAS_VERBOSE=2 OPENBLAS_CORETYPE=$core build/znet --version 2>&1 | grep -m1 'Core:' || true)
  if [[ "$picked" != *"Core: $core"* ]]; then
    echo "coretypes: OPENBLAS_CORETYPE=$core was not honoured (OpenBLAS said: '${picked:-nothing}');" \
         "this leg needs a DYNAMIC_ARCH OpenBLAS such as Debian's libopenblas0-pthread" >&2
    exit 1
  fi
  echo "coretypes: OPENBLAS_CORETYPE=$core ($picked)"
  OPENBLAS_CORETYPE=$core ctest --test-dir build --output-on-failure -LE slow -j2
  ran=$((ran + 1))
done
echo "coretypes: the fast suite passed under $ran other OpenBLAS core types"
