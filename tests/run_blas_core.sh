#!/usr/bin/env bash
# run_blas_core.sh: znet does not run OpenBLAS's SSE3 fallback kernels on a CPU that has AVX2 or
# AVX-512 (backends/blas_core.c restarts a computing command with OPENBLAS_CORETYPE set), and a core
# the user names in OPENBLAS_CORETYPE is kept. Reads the core `znet bench` names in its header (the
# one that ran) and the one `znet --version` says such commands run.
# usage: run_blas_core.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"

core() {
    "$znet" bench "$src/models/fashion_small.znet" --steps 1 --batch 4 --threads 1 --train-only |
        sed -n 's/.*OpenBLAS \([A-Za-z0-9]*\)).*/\1/p'
}

got=$(unset OPENBLAS_CORETYPE; core)
[ -n "$got" ] || bad "znet bench names no OpenBLAS core"
said=$(env -u OPENBLAS_CORETYPE "$znet" --version | sed -n 's/.*OpenBLAS kernels \([A-Za-z0-9]*\).*/\1/p')
[ "$said" = "$got" ] || bad "znet --version says OpenBLAS kernels '$said', bench ran '$got'"
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
