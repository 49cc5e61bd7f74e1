#!/usr/bin/env bash
# run_stages.sh: autodiff and the plan as named stages of the compile pipeline through the `znet`
# command: --passes lists autodiff among the training passes (after fuse_bn_relu, which fuses
# for the backend before it) and the plan last; `graph
# --dump-after autodiff` prints the training graph right after it (backward nodes, none of the
# later passes' copies), `--dump-after plan` every tensor's place; summary reports autodiff's node
# counts; --no-pass refuses it (exit 2), as --dump-after does a name that is no pass and a stage
# that --backward contradicts. usage: run_stages.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
model=$src/models/davidnet_zee.znet

"$znet" graph --passes > out 2>&1 || bad "--passes exited $?"
order=$(awk '$2 == "forward" || $2 == "inference" || $2 == "training" { printf "%s ", $1 }' out)
[ "$order" = "dce stitch no_dropout fold_bn ztower fuse_bn_relu autodiff poolmask recompute sink " ] || bad "--passes order: '$order'"
grep -Eq '^  ztower +training +z-tower fusion: .*\(a memory lever: only where a memory budget needs it\)' out ||
    bad "--passes: ztower's row"
grep -Eq '^  autodiff +training +appends the backward pass' out || bad "--passes: autodiff's row"
tail -1 out | grep -Eq '^  plan +then +the memory plan' || bad "--passes: the plan last"

"$znet" graph --text --dump-after autodiff --set width=4 "$model" > out 2>&1 ||
    bad "--dump-after autodiff exited $?"
grep -q '\.grad' out || bad "--dump-after autodiff: no backward node"
grep -q '(recompute)' out && bad "--dump-after autodiff: the recompute pass ran"
"$znet" graph --text --backward --set width=4 "$model" > full 2>&1 || bad "--backward exited $?"
grep -q '(recompute)' full || bad "--backward: no recomputed copy"
"$znet" graph --dot --dump-after autodiff --set width=4 "$model" > out 2>&1 ||
    bad "--dot --dump-after exited $?"
head -1 out | grep -q '^digraph' || bad "--dump-after without --text: want DOT"

# the plan after every pass: the training graph's with --backward (gradients, in-place nodes), else
# the inference graph's (no gradients), at the batch asked for
"$znet" graph --dump-after plan --backward --batch 32 --set width=4 "$model" > out 2>&1 ||
    bad "--dump-after plan --backward exited $?"
head -1 out | grep -q '^plan at batch 32: ' || bad "--dump-after plan: the header"
grep -Eq '^ +[0-9]+ [^ ]+\.grad +grads ' out || bad "--dump-after plan --backward: no gradient in the grads region"
grep -q ', in place over [0-9]' out || bad "--dump-after plan --backward: no in-place node"
grep -q '(recompute)' out || bad "--dump-after plan --backward: the training passes did not run"
"$znet" graph --dump-after plan --set width=4 "$model" > out 2>&1 || bad "--dump-after plan exited $?"
grep -q '^plan at batch 512: ' out || bad "--dump-after plan: the recipe's batch"
grep -Eq ' (grads|optim) ' out && bad "--dump-after plan: an inference plan with gradients"

"$znet" summary --set width=4 "$model" > out 2>&1 || bad "summary exited $?"
grep -Eq '^  ztower +off \(a memory lever: only where a memory budget needs it\) \(training graph\)$' out ||
    bad "summary: ztower ran without a memory budget"
grep -Eq '^  fuse_bn_relu 126 -> 113 nodes \(training graph\)$' out || bad "summary: fuse_bn_relu's node counts"
grep -Eq '^  autodiff +113 -> [0-9]+ nodes \(training graph\)$' out || bad "summary: autodiff's node counts"
"$znet" summary --set width=4 --no-pass fuse_bn_relu "$model" > out 2>&1 || bad "summary --no-pass exited $?"
grep -Eq '^  autodiff +126 -> [0-9]+ nodes \(training graph\)$' out || bad "summary: autodiff's node counts unfused"

# the z-tower fusion where the budget needs it, not where everything fits; with the fusion skipped,
# that budget is refused. Budgets from the curve itself (the scratch, and so every total, grows
# with the cores): width 16 at batch 128, where the fused towers reach below the towers apart.
w16=(--set width=16 --batch 128)
"$znet" summary "${w16[@]}" --memory-curve "$model" > out 2>&1 || bad "summary --memory-curve exited $?"
least() { awk -v kind="$1" '$NF == kind && (!m || $2 < m) { m = $2 } END { print m }' out; }
fused=$(least fused) apart=$(least apart) keep=$(awk '$1 == -1 && $NF == "apart" { print $2 }' out)
[ -n "$fused" ] && [ -n "$apart" ] && [ "$fused" -lt "$apart" ] ||
    bad "--memory-curve: the fused towers ($fused bytes) do not go below the towers apart ($apart)"
"$znet" summary "${w16[@]}" --memory-budget "$fused" "$model" > out 2>&1 || bad "summary within $fused exited $?"
grep -q "recomputed: the fused z-towers' convs" out || bad "summary within $fused: the z-towers not fused"
"$znet" summary "${w16[@]}" --memory-budget "$keep" "$model" > out 2>&1 || bad "summary within $keep exited $?"
grep -q "recomputed: nothing$" out || bad "summary within $keep: something recomputed"
zt_expect 2 "cannot be met at batch 128" "$znet" summary "${w16[@]}" --memory-budget "$fused" --no-pass ztower "$model"
zt_expect 2 "cannot be met at batch 128: .*\(figures with the z-towers fused" \
    "$znet" summary "${w16[@]}" --memory-budget $((fused - 1)) "$model"

zt_expect 2 "znet summary: --no-pass: pass autodiff cannot be skipped" "$znet" summary --no-pass autodiff "$model"
zt_expect 2 "znet run: --no-pass: pass autodiff cannot be skipped" "$znet" run --no-pass=autodiff "$model"
zt_expect 2 "no pass is called 'autodif'" "$znet" graph --dump-after autodif "$model"
zt_expect 2 "did you mean 'autodiff'" "$znet" graph --dump-after autodif "$model"
zt_expect 2 "--dump-after stitch shows the forward graph; drop --backward" \
    "$znet" graph --dump-after stitch --backward "$model"
zt_end stages
