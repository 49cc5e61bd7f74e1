#!/usr/bin/env bash
# run_budget.sh: --memory-budget on the command line: sizes refused with exit 2, a budget no plan
# meets refused before training (exit 2, the smallest plan and what dominates it) by run, bench,
# summary, compare and check --backends (which agrees with itself within the tightest budget), summary's budget line and --memory-curve table and SVG, and a 2-epoch run
# of a small DenseNet, and of a small residual net with max pooling (split segments), within the
# tightest budget logging the same losses as one recomputing nothing; the pass report and the
# recomputed multiply-adds when the budget fuses the z-towers.
# usage: run_budget.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
make_idx data 64 16
cat > dense.znet <<'ZNET'
use "densenet.znet"
model dense(growth = 4) {
  input image: [1, 28, 28]
  input label: class(10)
  d = transition(dense_block(conv2d(image, 8, bias = false), 2, growth))
  head out = xent(linear(gap(relu(batchnorm(dense_block(d, 2, growth)))), 10), label)
}
train { data = "fashion_mnist"; batch = 16; epochs = 2; augment = [] }
ZNET
cat > pooled.znet <<'ZNET'
use "resnet.znet"
model pooled(width = 4) {
  input image: [1, 28, 28]
  input label: class(10)
  head out = xent(classifier(layer(cbr(image, width), 2 * width)), label)
}
train { data = "fashion_mnist"; batch = 16; epochs = 2; augment = [] }
ZNET

for size in 1.5X 0 -1G G ''; do
    zt_expect 2 "memory-budget needs a size such as 512M" "$znet" summary dense.znet --memory-budget "$size"
done
zt_expect 2 "memory-budget needs a size" "$znet" compare dense.znet --memory-budget 12Q
zt_expect 1 "'memory_budget' must be bytes or a size" "$znet" summary dense.znet --set 'train.memory_budget="lots"'

# the curve: rungs from keep-everything (-1) down, and its SVG
zt_expect 0 "memory curve at batch 16" "$znet" summary dense.znet --memory-curve --svg curve.svg
python3 -c "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" curve.svg || bad "curve.svg is not XML"
grep -q "<polyline" curve.svg || bad "curve.svg draws no curve"
cp out curve.txt
rungs=$(awk '/^memory curve/ {on = 1; next} on && /^ +-?[0-9]+ / {print $1} on && /^$/ {exit}' curve.txt)
[ "$(echo "$rungs" | head -1)" = -1 ] || bad "the curve does not start at rung -1: $rungs"
[ "$(echo "$rungs" | wc -l)" -ge 3 ] || bad "the curve has no conv to recompute: $rungs"
zt_expect 2 "svg FILE goes with --memory-curve" "$znet" summary dense.znet --svg x.svg

# impossible budgets: exit 2 before training, naming the smallest plan and what dominates it
impossible="memory budget 1.0 KiB cannot be met at batch 16: the smallest plan takes .*dominate"
zt_expect 2 "$impossible" "$znet" summary dense.znet --memory-budget 1K
zt_expect 2 "$impossible" "$znet" bench dense.znet --memory-budget 1K --threads 1 --steps 1
zt_expect 2 "$impossible" "$znet" compare dense.znet --memory-budget 1K
zt_expect 2 "$impossible" "$znet" run dense.znet --memory-budget 1K --data data --threads 1 --no-save
grep -q '^training' out && bad "run started training within an impossible budget"
zt_expect 2 "memory budget 1.0 KiB cannot be met at batch 8" "$znet" check dense.znet --backends cpu,cpu --memory-budget 1K

# the smallest total of the curve fits exactly, a byte less does not (the refusal names the floor
# no choice goes below); a 2-epoch run within it logs the losses of a run that recomputes nothing
# (the same arithmetic repeated)
tightest() { # MODEL [OPTIONS]: the curve's smallest total
    "$znet" summary "$@" --memory-curve > curve.out 2>&1 || bad "$1: curve: $(cat curve.out)"
    awk '/^memory curve/ {on = 1; next} on && /^ +-?[0-9]+ / {print $2} on && /^$/ {exit}' curve.out | sort -n | head -1
}
for model in dense.znet pooled.znet; do
    least=$(tightest $model)
    zt_expect 0 "the training plan takes .*; recomputed: (the cheap segments after every kept node|split segments)" \
        "$znet" summary $model --memory-budget "$least"
    zt_expect 2 "cannot be met.*no choice of what to recompute goes below" "$znet" summary $model --memory-budget $((least - 1))
    zt_expect 0 "0 over tolerance" "$znet" check $model --backends cpu,cpu --memory-budget "$least"
    run=("$znet" run $model --data data --threads 1 --quiet --no-save --log-every 1)
    "${run[@]}" --no-pass recompute --log free.jsonl > free.out 2>&1 || bad "$model: run without recompute: $(cat free.out)"
    "${run[@]}" --memory-budget "$least" --log tight.jsonl > tight.out 2>&1 || bad "$model: run within $least: $(cat tight.out)"
    grep -o '"loss":[^,}]*' free.jsonl > free.loss
    grep -o '"loss":[^,}]*' tight.jsonl > tight.loss
    [ "$(wc -l < free.loss)" -ge 8 ] || bad "$model: the run logged $(wc -l < free.loss) step losses, want 8"
    cmp -s free.loss tight.loss || bad "$model: losses differ within the budget: $(diff free.loss tight.loss | head -4)"
done
"$znet" summary pooled.znet --memory-budget "$(tightest pooled.znet)" > pooled.out 2>&1
grep -q "recomputed: split segments: .* and pooling" pooled.out || bad "pooled.znet's tightest plan splits no segment: $(cat pooled.out)"

# the Zee model at batch 256, where the z-tower fusion gives the smallest plan: the pass report
# adds the fused graph's passes before the budget line, and summary counts the fused towers' convs
# among the recomputed multiply-adds, as the budget line does
zee=("$src/models/davidnet_zee.znet" --set width=8 --batch 256)
least=$(tightest "${zee[@]}")
zt_expect 0 "the budget fits better with the memory levers; their graph's passes:" \
    "$znet" summary "${zee[@]}" --memory-budget "$least"
grep -Eq "^  ztower +[0-9]+ -> [0-9]+ nodes \(training graph\)" out || bad "no fused ztower line: $(cat out)"
grep -Eq "^  budget +.*; plan .* \(training graph\)$" out || bad "the pass report lost its budget line: $(cat out)"
grep -q "the training plan takes .*; recomputed: the fused z-towers' convs" out || bad "the budget did not fuse: $(cat out)"
macs=$(grep -o "of --memory-curve), [0-9,]* multiply-adds per example" out | grep -o "[0-9][0-9,]*")
[ -n "$macs" ] || bad "no budget multiply-adds: $(cat out)"
grep -q "of which recomputed $macs (the fused z-towers' convs among them)" out ||
    bad "summary's recomputed multiply-adds differ from the budget's ($macs): $(grep 'of which' out)"
zt_end run_budget
