#!/usr/bin/env bash
# run_stages.sh: autodiff and the plan as named stages of the compile pipeline through the `znet`
# command: --passes lists autodiff first among the training passes and the plan last; `graph
# --dump-after autodiff` prints the training graph right after it (backward nodes, none of the
# later passes' copies), `--dump-after plan` every tensor's place; summary reports autodiff's node
# counts; --no-pass refuses it (exit 2), as --dump-after does a name that is no pass and a stage
# that --backward contradicts. usage: run_stages.sh ZNET SOURCE_DIR
set -u
znet=$1
src=$2
model=$src/models/davidnet_zee.znet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ZNET_STDLIB=$src/stdlib
fail() { echo "FAIL: $*"; sed 's/^/    /' "$tmp/out"; exit 1; }

"$znet" graph --passes > "$tmp/out" 2>&1 || fail "--passes exited $?"
order=$(awk '$2 == "forward" || $2 == "inference" || $2 == "training" { printf "%s ", $1 }' "$tmp/out")
[ "$order" = "dce stitch ztower no_dropout fold_bn autodiff poolmask recompute sink " ] || fail "--passes order: '$order'"
grep -Eq '^  autodiff +training +appends the backward pass' "$tmp/out" || fail "--passes: autodiff's row"
tail -1 "$tmp/out" | grep -Eq '^  plan +then +the memory plan' || fail "--passes: the plan last"

"$znet" graph --text --dump-after autodiff --set width=4 "$model" > "$tmp/out" 2>&1 ||
    fail "--dump-after autodiff exited $?"
grep -q '\.grad' "$tmp/out" || fail "--dump-after autodiff: no backward node"
grep -q '(recompute)' "$tmp/out" && fail "--dump-after autodiff: the recompute pass ran"
"$znet" graph --text --backward --set width=4 "$model" > "$tmp/full" 2>&1 || fail "--backward exited $?"
grep -q '(recompute)' "$tmp/full" || { cp "$tmp/full" "$tmp/out"; fail "--backward: no recomputed copy"; }
"$znet" graph --dot --dump-after autodiff --set width=4 "$model" > "$tmp/out" 2>&1 ||
    fail "--dot --dump-after exited $?"
head -1 "$tmp/out" | grep -q '^digraph' || fail "--dump-after without --text: want DOT"

# the plan after every pass: the training graph's with --backward (gradients, in-place nodes), else
# the inference graph's (no gradients), at the batch asked for
"$znet" graph --dump-after plan --backward --batch 32 --set width=4 "$model" > "$tmp/out" 2>&1 ||
    fail "--dump-after plan --backward exited $?"
head -1 "$tmp/out" | grep -q '^plan at batch 32: ' || fail "--dump-after plan: the header"
grep -Eq '^ +[0-9]+ [^ ]+\.grad +grads ' "$tmp/out" || fail "--dump-after plan --backward: no gradient in the grads region"
grep -q ', in place over [0-9]' "$tmp/out" || fail "--dump-after plan --backward: no in-place node"
grep -q '(recompute)' "$tmp/out" || fail "--dump-after plan --backward: the training passes did not run"
"$znet" graph --dump-after plan --set width=4 "$model" > "$tmp/out" 2>&1 || fail "--dump-after plan exited $?"
grep -q '^plan at batch 512: ' "$tmp/out" || fail "--dump-after plan: the recipe's batch"
grep -Eq ' (grads|optim) ' "$tmp/out" && fail "--dump-after plan: an inference plan with gradients"

"$znet" summary --set width=4 "$model" > "$tmp/out" 2>&1 || fail "summary exited $?"
grep -Eq '^  autodiff   114 -> [0-9]+ nodes \(training graph\)$' "$tmp/out" || fail "summary: autodiff's node counts"

# command line | exit code | message
while IFS='|' read -r args want_rc want; do
    # shellcheck disable=SC2086
    "$znet" $args "$model" > "$tmp/out" 2>&1
    rc=$?
    [ "$rc" -eq "$want_rc" ] || fail "znet $args: exit $rc, want $want_rc"
    grep -qF -- "$want" "$tmp/out" || fail "znet $args: no message '$want'"
done <<'CASES'
summary --no-pass autodiff|2|znet summary: --no-pass: pass autodiff cannot be skipped
run --no-pass=autodiff|2|znet run: --no-pass: pass autodiff cannot be skipped
graph --dump-after autodif|2|no pass is called 'autodif'
graph --dump-after autodif|2|did you mean 'autodiff'?
graph --dump-after stitch --backward|2|--dump-after stitch shows the forward graph; drop --backward
CASES
echo "stages: ok"
