#!/usr/bin/env bash
# .ci/fuzz.sh: the fuzzing leg (docs/testing.md, "Fuzzing"). Builds the libFuzzer targets with
# clang (ASan + UBSan), replays every seed and regression input, then fuzzes each target for
# FUZZ_SECONDS (default 60) from its committed corpus into a scratch copy (the tree is left as
# it was). Fails on any crash, leak, sanitizer report, timeout (10 s) or use of over 2 GiB; the
# failing input is kept under build-ci-fuzz/artifacts/. Needs clang and libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
root=$(pwd)
build=$root/build-ci-fuzz
targets=(frontend checkpoint cifar idx gzip tar image npy)
start=$(date +%s)

mkdir -p "$build"
CC=${CC:-clang} cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DZNET_FUZZ=ON > "$build/cmake.log" 2>&1 ||
    { cat "$build/cmake.log"; echo "fuzz: cmake failed" >&2; exit 1; }
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"
common=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$build/artifacts/")

for t in "${targets[@]}"; do
    exe=$build/tests/fuzz/fuzz_$t
    inputs=("$root/tests/fuzz/corpus/$t")
    [ -d "$root/tests/fuzz/regressions/$t" ] && inputs+=("$root/tests/fuzz/regressions/$t")
    extra=()
    if [ "$t" = frontend ]; then
        inputs+=("$root/models" "$root/stdlib" "$root/tests/diag")
        extra=(-dict="$root/tests/fuzz/znet.dict" -max_len=4096)
    fi
    "$exe" "${common[@]}" -runs=0 "${inputs[@]}" > "$work/$t.replay.log" 2>&1 ||
        { tail -n 40 "$work/$t.replay.log"; echo "fuzz: fuzz_$t fails on its seed or regression inputs" >&2; exit 1; }
    mkdir "$work/$t"
    "$exe" "${common[@]}" "${extra[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work/$t" "${inputs[@]}" \
        > "$work/$t.fuzz.log" 2>&1 ||
        { tail -n 60 "$work/$t.fuzz.log"; echo "fuzz: fuzz_$t found a failing input (saved in $build/artifacts/)" >&2; exit 1; }
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.fuzz.log")
    cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$t.fuzz.log" | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    echo "fuzz_$t: corpus replayed; $runs runs in $seconds s, $cov, no finding"
done
echo "fuzz: passed: ${#targets[@]} targets replayed their corpora and fuzzed ${seconds} s each ($(( $(date +%s) - start )) s in all)"
