#!/usr/bin/env bash
# run_blas_core.sh: znet does not run OpenBLAS's SSE3 fallback kernels on a CPU that has AVX2 or
# AVX-512 (backends/blas_core.c restarts the program with OPENBLAS_CORETYPE set), and a core the
# user names in OPENBLAS_CORETYPE is kept. Reads `znet --version`, which names the core in use.
# usage: run_blas_core.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"

core() { "$znet" --version | sed -n 's/.*OpenBLAS kernels \([A-Za-z0-9]*\).*/\1/p'; }

got=$(env -u OPENBLAS_CORETYPE "$znet" --version | sed -n 's/.*OpenBLAS kernels \([A-Za-z0-9]*\).*/\1/p')
[ -n "$got" ] || bad "znet --version names no OpenBLAS core: $("$znet" --version)"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    case "$got" in
        Prescott|Core2|Penryn|Dunnington|Nehalem|Sandybridge|Atom)
            bad "this CPU has AVX2 but znet runs OpenBLAS's $got kernels" ;;
    esac
else
    echo "note: no AVX2 on this CPU; OpenBLAS's own pick ($got) is kept"
fi
got=$(OPENBLAS_CORETYPE=Haswell core)
[ "$got" = Haswell ] || bad "OPENBLAS_CORETYPE=Haswell gave the $got kernels"
got=$(OPENBLAS_CORETYPE=Prescott core)
[ "$got" = Prescott ] || bad "OPENBLAS_CORETYPE=Prescott (the user's choice) gave the $got kernels"
zt_end blas_core
