#!/usr/bin/env bash
# run_check_backends.sh: `znet check --backends A,B` end to end: cpu against cpu agrees on
# DavidNet-Zee (exit 0, the verdict line); cpu against cuda either agrees (a usable GPU) or exits 1
# with a message that says why cuda cannot run here, never a crash; bad arguments (an unknown
# backend among them) exit 2.
# usage: run_check_backends.sh ZNET SOURCE_DIR
set -u
znet=$1
model=$2/models/davidnet_zee.znet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$znet" check --backends cpu,cpu "$model" --set width=8 > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "cpu,cpu exited $?"; }
grep -q "every tensor within tolerance" "$tmp/out" || { cat "$tmp/out"; fail "cpu,cpu: no verdict line"; }

"$znet" check --backends cpu,cuda "$model" --set width=8 > "$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
case $rc in
0) grep -q "every tensor within tolerance" "$tmp/out" || fail "cpu,cuda: exit 0 without the verdict" ;;
1) grep -Eq "^znet check: backend cuda cannot run here: .*(unknown backend|CUDA|GPU|driver)" "$tmp/out" ||
       fail "cpu,cuda: exit 1 without saying why cuda cannot run" ;;
*) fail "cpu,cuda exited $rc" ;;
esac

for bad in "--backends cpu" "--backends cpu,cpu,cpu" "--backends cpu,cpu --tolerance -1" "--tolerance 1e-3" \
           "--backends cpu,cpu --precision fp8" "--backends cpu,nosuch"; do
    # shellcheck disable=SC2086
    "$znet" check $bad "$model" > /dev/null 2>&1
    [ $? -eq 2 ] || fail "'$bad': want exit 2"
done
echo "ok"
