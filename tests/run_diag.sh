#!/usr/bin/env bash
# run_diag.sh: the golden diagnostics test. For every tests/diag/NN_name.znet, runs
# `znet check` on it (from that folder, with the bare file name, plus the arguments of a
# first-line `# args: ...` comment) and compares stderr and the exit code (a last line
# `exit: N`) with NN_name.expected. Every case must fail with exit 1 (2 for a usage error) and
# print nothing on stdout. usage: run_diag.sh [--update] ZNET DIAG_DIR
set -u
shopt -s nullglob

update=0
if [ "${1:-}" = "--update" ]; then
    update=1
    shift
fi
if [ $# -ne 2 ]; then
    echo "usage: $0 [--update] ZNET DIAG_DIR" >&2
    exit 2
fi
znet=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$2" || exit 2
# a relative stdlib keeps the paths in the messages the same on every machine
export ZNET_STDLIB=../../stdlib

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
n=0
for f in *.znet; do
    n=$((n + 1))
    name=${f%.znet}
    args=()
    first=$(head -n 1 "$f")
    if [[ $first == "# args: "* ]]; then
        read -r -a args <<< "${first#\# args: }"
    fi
    timeout 10 "$znet" check "${args[@]}" "$f" > "$tmp/stdout" 2> "$tmp/stderr"
    rc=$?
    echo "exit: $rc" >> "$tmp/stderr"
    if [ "$update" = 1 ]; then
        cp "$tmp/stderr" "$name.expected"
    elif ! diff -u --label "$name.expected" --label "$name (actual)" "$name.expected" "$tmp/stderr"; then
        echo "FAIL: $f: diagnostics differ from $name.expected" >&2
        failed=$((failed + 1))
    fi
    if [ "$rc" != 1 ] && [ "$rc" != 2 ]; then
        echo "FAIL: $f: exit code $rc (want 1, or 2 for a usage error)" >&2
        failed=$((failed + 1))
    fi
    if [ -s "$tmp/stdout" ]; then
        echo "FAIL: $f: wrote to stdout:" >&2
        head -n 5 "$tmp/stdout" >&2
        failed=$((failed + 1))
    fi
done
for e in *.expected; do
    [ -e "${e%.expected}.znet" ] || { echo "FAIL: $e has no .znet" >&2; failed=$((failed + 1)); }
done
if [ "$failed" -ne 0 ]; then
    echo "diag_golden: $failed failure(s) in $n cases" >&2
    exit 1
fi
echo "diag_golden: $n cases $([ "$update" = 1 ] && echo updated || echo passed)"
