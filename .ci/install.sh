#!/usr/bin/env bash
# CI leg: `cmake --install` gives a znet that works on its own. Installs the suite's build/ to a
# temporary prefix, copies models/ beside it, then renames the source tree (build/ inside it) so
# every path compiled into znet (the source's stdlib/, the build's CUDA and MPI modules) is gone,
# and runs --version, `check` on every model, `summary` and a two-step `bench` from the installed
# binary, and one rank under mpirun where the MPI module was built.
# The rename is undone on any exit. Needs the README's build in build/ (the suite leg makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
[ -x build/znet ] || { echo "install: no build/znet; run the suite leg (README's build) first" >&2; exit 1; }
work=$(mktemp -d)
hidden="$src.hidden-by-install-leg.$$"
restore() {
  [ -d "$hidden" ] && mv "$hidden" "$src"
  rm -rf "$work"
}
trap restore EXIT
cmake --install build --prefix "$work/prefix" >/dev/null
cp -r models "$work/models"
mv "$src" "$hidden"
cd "$work"
unset ZNET_STDLIB ZNET_CUDA_MODULE ZNET_MPI_MODULE
znet=$work/prefix/bin/znet
[ ! -e "$src" ] || { echo "install: the source tree is still at $src" >&2; exit 1; }
"$znet" --version
for m in models/*.znet; do "$znet" check "$m"; done
"$znet" summary models/davidnet_zee.znet --set width=8 --batch 16 | tail -4
"$znet" bench models/davidnet_zee.znet --set width=8 --batch 16 --steps 2 --train-only
if [ -e "$work/prefix/lib/znet/libznet_cuda.so" ]; then
  # the module is found in lib/znet (a missing GPU or driver is said, not "not found")
  said=$("$znet" bench models/davidnet_zee.znet --set width=8 --batch 16 --steps 2 --backend cuda 2>&1 || true)
  if grep 'was not found' <<<"$said"; then
    echo "install: the installed znet did not find its CUDA module" >&2
    exit 1
  fi
fi
if [ -e "$work/prefix/lib/znet/libznet_mpi.so" ] && command -v mpirun > /dev/null; then
  # one rank under mpirun loads the MPI module from lib/znet (the data set may be missing: that
  # is said after MPI started)
  said=$(mpirun --allow-run-as-root --oversubscribe -np 1 "$znet" eval --weights none.ckpt models/davidnet.znet 2>&1 || true)
  if grep 'cannot load the MPI module' <<<"$said"; then
    echo "install: the installed znet did not load its MPI module" >&2
    exit 1
  fi
fi
echo "install: the installed znet ran check, summary and bench with the source and build trees out of view"
