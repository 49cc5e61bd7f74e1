#!/usr/bin/env bash
# run_prefixes.sh: crash-freedom on truncated files. Every prefix (cut at each byte) of every
# file in models/ and stdlib/ goes through `znet check`, which must end with exit 0 or 1 within
# 5 s: never a signal, an abort, a sanitizer report, a timeout or another exit code.
# usage: run_prefixes.sh ZNET SOURCE_DIR [JOBS]
# Under a sanitizer build (a check costs ~50 ms there, the 60,000-block file 3-4 s) the leg sets
# ZNET_PREFIX_STRIDE=K: only the cuts at every K-th byte, at an offset that moves by one from
# file to file, and each whole file; and ZNET_PREFIX_TIMEOUT=S: S seconds a check, not 5.
set -u
shopt -s nullglob
export LC_ALL=C # ${#text} and ${text:0:i} count bytes

if [ $# -lt 2 ]; then
    echo "usage: $0 ZNET SOURCE_DIR [JOBS]" >&2
    exit 2
fi
znet=$1
src=$2
jobs=${3:-2}
stride=${ZNET_PREFIX_STRIDE:-1}
limit=${ZNET_PREFIX_TIMEOUT:-5}
for v in "ZNET_PREFIX_STRIDE=$stride" "ZNET_PREFIX_TIMEOUT=$limit"; do
    if ! [[ ${v#*=} =~ ^[1-9][0-9]*$ ]]; then
        echo "$0: ${v%%=*} must be a positive integer, not '${v#*=}'" >&2
        exit 2
    fi
done
export ZNET_STDLIB="$src/stdlib"
# make sanitizer findings visible in the exit code too (a plain build ignores these)
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:exitcode=86:detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:halt_on_error=1:exitcode=86:print_stacktrace=1"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# every prefix as a file of its own: NAME_BYTES.znet (the names match no `use` of a cut file,
# so imports still come from the stdlib)
n=0
n_files=0
for f in "$src"/models/*.znet "$src"/stdlib/*.znet; do
    base=$(basename "$f" .znet)
    text=$(cat "$f"; printf x) # the x keeps trailing newlines
    text=${text%x}
    for ((i = 0; i <= ${#text}; i++)); do
        (( i == ${#text} || (i + n_files) % stride == 0 )) || continue
        printf '%s' "${text:0:i}" > "$tmp/${base}_$i.znet"
        echo "$tmp/${base}_$i.znet" >> "$tmp/list$((n % jobs))"
        n=$((n + 1))
    done
    n_files=$((n_files + 1))
done

# checks one list of prefixes; writes the number of failures to LIST.failed
check_list() {
    local list=$1 failed=0 p rc err
    while read -r p; do
        timeout "$limit" "$znet" check "$p" > /dev/null 2> "$p.err"
        rc=$?
        err=""
        read -r -d '' err < "$p.err"
        if { [ "$rc" != 0 ] && [ "$rc" != 1 ]; } || [[ $err == *Sanitizer* || $err == *"runtime error"* ]]; then
            failed=$((failed + 1))
            echo "FAIL: $(basename "$p") (the source cut at that byte): exit $rc$([ "$rc" = 124 ] && echo ' (timed out)')"
            printf '%s\n' "$err" | tail -n 15
        fi
        rm -f "$p.err"
    done < "$list"
    echo "$failed" > "$list.failed"
}

# files of NUL bytes (a binary given as a model): in a comment, in a string, bare; each must be
# reported in time too (a NUL inside a flex token once made the scan quadratic: 100 KB took 40 s)
for k in comment string bare; do
    case $k in comment) lead='#' ;; string) lead='"' ;; bare) lead='' ;; esac
    { printf '%s' "$lead"; head -c 200000 /dev/zero; } > "$tmp/nul_$k.znet"
    echo "$tmp/nul_$k.znet" >> "$tmp/list$((n % jobs))"
    n=$((n + 1))
done
# a generated file of 60,000 blocks (each new block was checked against all before it: 13 s)
seq 0 59999 | sed 's/.*/block f&(x) {\n  return x\n}/' > "$tmp/many_blocks.znet"
echo "$tmp/many_blocks.znet" >> "$tmp/list$((n % jobs))"
n=$((n + 1))

start=$SECONDS
for ((j = 0; j < jobs && j < n; j++)); do
    check_list "$tmp/list$j" &
done
wait
failed=0
for ((j = 0; j < jobs && j < n; j++)); do
    failed=$((failed + $(cat "$tmp/list$j.failed")))
done
if [ "$failed" -ne 0 ]; then
    echo "diag_prefixes: $failed of $n prefixes crashed, hung or exited oddly" >&2
    exit 1
fi
echo "diag_prefixes: $n prefixes checked$([ "$stride" != 1 ] && echo " (one cut in $stride)") in $((SECONDS - start)) s"
