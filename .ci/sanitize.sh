#!/usr/bin/env bash
# CI leg "sanitize" (docs/testing.md, "Sanitizers"): builds znet and its tests with AddressSanitizer
# (leaks included) and UndefinedBehaviorSanitizer (Debug, frame pointers, no recovery, no CUDA)
# into build-sanitize/ and runs the whole CTest suite under them; any report fails its test, so
# the leg. Budget: 12 minutes on 2 cores (measured: 4 to 7 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

if ! { cmake -S . -B build-sanitize -DZNET_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug &&
       cmake --build build-sanitize -j2; }; then
    echo "sanitize: FAILED: the sanitizer build did not configure or build (see above)" >&2
    exit 1
fi

# exitcode=86: a process with a report exits 86, a code no znet command uses, so a shell test
# that expects 0, 1 or 2 from znet fails too. allocator_may_return_null: an allocation too large
# for memory returns NULL as it does without ASan, so the code's own refusal is what is tested
# (test_alloc_refused asks for SIZE_MAX / 2 bytes; ASan's default is to abort).
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:allocator_may_return_null=1:exitcode=86
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=86
# diag_prefixes: one cut in 7 of each file (all 11,029 cuts took 171 s to over 300 s here), 20 s a check
export ZNET_PREFIX_STRIDE=7 ZNET_PREFIX_TIMEOUT=20

if ! ctest --test-dir build-sanitize --output-on-failure; then
    echo "sanitize: FAILED after $((SECONDS - start)) s (a test failed or a sanitizer reported; see above)" >&2
    exit 1
fi
echo "sanitize: the whole suite passed under address,undefined in $((SECONDS - start)) s"
