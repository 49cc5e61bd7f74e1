#!/usr/bin/env bash
# bench_winograd_ab.sh: Winograd conv time of this tree's backends/cpu/winograd.c against the one
# at REV, both in one process, calls alternated (tests/bench_winograd_ab.c): small levers show
# there that separate runs on a shared host hide. REV's winograd.c must build against this
# tree's headers. Not part of the build or tests: a benchmark, run on a quiet machine.
# usage: tests/bench_winograd_ab.sh REV [REPS=10] [LAYER PREFIX]   (docs/performance.md, "Winograd")
set -eu
[ $# -ge 1 ] || { echo "usage: $0 REV [REPS] [LAYER PREFIX]" >&2; exit 2; }
rev=$1
shift
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
git show "$rev:backends/cpu/winograd.c" >"$out/base_winograd.c"
flags=(-O3 -ffp-contract=off -std=c11 -D_POSIX_C_SOURCE=200809L -I. -I/usr/include/x86_64-linux-gnu/openblas-pthread)
renames=()
for f in forward backward_data backward_filter workspace_bytes supported enable set_block_bytes chosen; do
    renames+=("-Dzn_winograd_$f=base_winograd_$f")
done
gcc "${flags[@]}" "${renames[@]}" -c "$out/base_winograd.c" -o "$out/base.o"
gcc "${flags[@]}" tests/bench_winograd_ab.c backends/cpu/{winograd,threads,cpu_features}.c "$out/base.o" \
    -o "$out/bench_winograd_ab" -lopenblas -lm -lpthread
echo "# base: $(git log -1 --format='%h %s' "$rev" | cut -c1-80)"
"$out/bench_winograd_ab" "$@"
