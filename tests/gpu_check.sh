#!/usr/bin/env bash
# gpu_check.sh: every check that needs an NVIDIA GPU (docs/cuda.md, "Checks to run on a GPU"), in
# one run that fits a brief loan of a GPU machine (10 minutes: each step's limit is cut to what is
# left of ZNET_GPU_BUDGET seconds, and a step with under 10 s left is skipped), most telling first:
#   1. parity: `znet check --backends cpu,cuda` on DavidNet and Zee in fp32 and fp16, batch norm +
#      relu fused (the default: both backends run the fused ops) and with --no-pass fuse_bn_relu;
#      the CUDA-graph replay against eager training (same losses, --deterministic); the cuDNN
#      algorithm cache (written, reread, a damaged one named and ignored);
#   2. speed: `znet bench` of DavidNet width 64, batch 512 in fp16, bf16, fp32 beside the PyTorch
#      peer (tests/bench_zee_torch.py --device cuda: AMP and channels_last) in the same sitting,
#      graphs off and batch norm + relu apart for their shares, Zee with the fused z-tower and
#      without it, and an epoch of the
#      real input pipeline on the CIFAR subset (SUBSET_DIR, from tests/make_cifar_subset.py);
#   3. the rest: the CUDA ctest tests, parity on every model and in bf16, uneven tower slices,
#      compute-sanitizer, a profile.
# Each step writes OUT_DIR/STEP.txt and one line to OUT_DIR/summary.txt; the exit status is 1 when
# any step failed (an EXIT trap sets it, so a block appended at the end of this file runs too:
# use `step` and `note` there). Where no GPU is found it says so and exits 1.
# usage: tests/gpu_check.sh BUILD_DIR OUT_DIR [SUBSET_DIR]   (BUILD_DIR configured with the CUDA
#        backend; PYTHON names a python3 with a CUDA PyTorch for the peer, else those steps are
#        skipped; without SUBSET_DIR the steps that train on data are skipped)
set -u
[ $# -eq 2 ] || [ $# -eq 3 ] || { echo "usage: $0 BUILD_DIR OUT_DIR [SUBSET_DIR]" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
src=$(cd "$(dirname "$0")/.." && pwd)
out=$2
subset=${3:-}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
[ -z "$subset" ] || subset=$(cd "$subset" && pwd) || exit 2
summary=$out/summary.txt
: > "$summary"
failed=0
trap 'exit $failed' EXIT
znet=$build/znet
budget_end=$((SECONDS + ${ZNET_GPU_BUDGET:-570}))
# the algorithm cache of these runs lives with the results, never in the user's cache
export ZNET_CUDNN_CACHE=$out/cudnn-algos.txt

# note TEXT: a line in the summary
note() {
    echo "$*" | tee -a "$summary"
}

# step NAME SECONDS COMMAND...: runs COMMAND under a time limit (cut to the budget left), output
# to OUT_DIR/NAME.txt; status: COMMAND's, 124 on a time-out, 125 when skipped for lack of time
step() {
    local name=$1 limit=$2 t0=$SECONDS rc left=$((budget_end - SECONDS))
    shift 2
    if [ $left -lt 10 ]; then
        printf '%-40s skipped (time budget spent)\n' "$name" | tee -a "$summary"
        return 125
    fi
    [ $limit -le $left ] || limit=$left
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    rc=$?
    printf '%-40s %s  %4d s\n' "$name" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")" \
        $((SECONDS - t0)) | tee -a "$summary"
    [ $rc -eq 0 ] || failed=1
    return $rc
}

# expect NAME PATTERN: fails NAME when OUT_DIR/NAME.txt lacks the extended regex PATTERN
expect() {
    grep -Eq "$2" "$out/$1.txt" && return 0
    note "  $1: output lacks /$2/"
    failed=1
    return 1
}

if ! step gpu 30 nvidia-smi; then
    note "no NVIDIA GPU or driver here (nvidia-smi failed): nothing to check"
    exit 1
fi

# lacks NAME PATTERN: fails NAME when OUT_DIR/NAME.txt has the extended regex PATTERN
lacks() {
    grep -Eq "$2" "$out/$1.txt" || return 0
    note "  $1: output has /$2/"
    failed=1
    return 1
}

# ---- 1. parity --------------------------------------------------------------------------------
# node by node, one training step from the same weights and batch (docs/parity.md)
zee=$src/models/davidnet_zee.znet
davidnet=$src/models/davidnet.znet
# (Zee's 16-bit checks at width 16, as every earlier GPU run did them.) Batch norm + relu is fused
# on both backends unless --no-pass fuse_bn_relu; --verbose lists every node with its op, so a
# CUDA backend that declined the fused ops (parity then compares the unfused graph) is caught.
fused_ops='\(batchnorm_relu(_bwd_coef|_bwd_data)?\)'
parity() {
    local name=$1 limit=$2
    shift 2
    step "$name" "$limit" "$znet" check --backends cpu,cuda --batch 32 --verbose "$@" || return
    case $name in
    *_no_fuse_bn_relu) lacks "$name" "$fused_ops" ;;
    *) expect "$name" '\(batchnorm_relu_bwd_data\)' ;;
    esac
}
parity parity_davidnet_fp32 90 "$davidnet"
parity parity_zee_fp32 120 "$zee"
parity parity_davidnet_fp16 90 --precision fp16 "$davidnet"
parity parity_zee_w16_fp16 90 --precision fp16 --set width=16 "$zee"
# cuDNN's batch norm and the relu apart, as before the fused CUDA kernels
parity parity_davidnet_fp32_no_fuse_bn_relu 90 --no-pass fuse_bn_relu "$davidnet"
parity parity_zee_w16_fp16_no_fuse_bn_relu 90 --precision fp16 --set width=16 \
    --no-pass fuse_bn_relu "$zee"

# training with the step replayed as a CUDA graph gives eager training's losses to the bit
# (--deterministic, and the second run reads the first one's algorithm cache: the same
# algorithms in both); a fall-back to eager is reported
if [ -n "$subset" ]; then
    for g in on off; do
        step "graph_${g}_davidnet_w16" 120 env ZNET_CUDA_GRAPH=$g "$znet" run "$davidnet" \
            --backend cuda --precision fp16 --deterministic --set width=16 --set train.epochs=2 \
            --set 'train.data=npy(layout = "nchw")' --data "$subset" --limit 2048 \
            --test-limit 512 --quiet --no-save --log "$out/graph_$g.csv"
    done
    if [ -s "$out/graph_on.csv" ] && [ -s "$out/graph_off.csv" ]; then
        # every column but the time and the rate
        if diff <(awk -F, -v OFS=, '{NF -= 2; print}' "$out/graph_on.csv") \
                <(awk -F, -v OFS=, '{NF -= 2; print}' "$out/graph_off.csv") > "$out/graph_diff.txt"
        then note "  graph replay: the same losses and accuracies as eager"
        else note "  graph replay: losses differ from eager (graph_diff.txt)"; failed=1; fi
    fi
    grep -q "not as a CUDA graph" "$out/graph_on_davidnet_w16.txt" 2> /dev/null &&
        note "  graph replay fell back to eager: $(grep -m1 'not as a CUDA graph' "$out/graph_on_davidnet_w16.txt")"
else
    note "no SUBSET_DIR: the graph-replay and epoch steps are skipped"
fi

# the algorithm cache: the first run times and writes it, the second reads it (same choices), a
# damaged file is named on stderr and rewritten
rm -f "$ZNET_CUDNN_CACHE"
bench_small=("$znet" bench "$zee" --backend cuda --precision fp16 --set width=16 --batch 64
             --steps 2 --train-only)
step algo_cache_write 90 "${bench_small[@]}" && [ -s "$ZNET_CUDNN_CACHE" ] &&
    note "  algorithm cache: $(($(wc -l < "$ZNET_CUDNN_CACHE") - 1)) shapes written"
cp "$ZNET_CUDNN_CACHE" "$out/cudnn-algos.first.txt" 2> /dev/null
step algo_cache_reread 90 "${bench_small[@]}" &&
    if cmp -s "$ZNET_CUDNN_CACHE" "$out/cudnn-algos.first.txt"; then note "  algorithm cache: reread unchanged"
    else note "  algorithm cache: changed on rereading (diff cudnn-algos.first.txt cudnn-algos.txt)"; failed=1; fi
echo "this is not an algorithm cache" > "$ZNET_CUDNN_CACHE"
step algo_cache_damaged 90 "${bench_small[@]}" &&
    expect algo_cache_damaged "cudnn-algos.txt:1: not a znet algorithm cache" &&
    head -1 "$ZNET_CUDNN_CACHE" | grep -q "znet cuDNN algorithm cache" &&
    note "  algorithm cache: a damaged file was named, ignored and rewritten"

# a file that cannot be written is said and the run goes on; a bad graph setting is refused
step algo_cache_unwritable 90 env ZNET_CUDNN_CACHE=/proc/znet/cudnn-algos.txt "${bench_small[@]}" &&
    expect algo_cache_unwritable "the cuDNN algorithm cache is not saved: .*/proc/znet"
step graph_setting_refused 30 sh -c 'ZNET_CUDA_GRAPH=maybe "$0" bench "$1" --backend cuda --batch 8 \
    --steps 1 2>&1; test $? -eq 1' "$znet" "$davidnet" &&
    expect graph_setting_refused "ZNET_CUDA_GRAPH=maybe: expected on or off"

# ---- 2. speed ---------------------------------------------------------------------------------
# znet then the PyTorch peer (AMP, channels_last) for each precision, in the same sitting:
# DavidNet width 64, batch 512, then the Zee model; the algorithm cache is warm by now
python=${PYTHON:-python3}
peer_ok=0
"$python" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2> /dev/null && peer_ok=1
[ $peer_ok = 1 ] || note "no CUDA PyTorch in $python: peer steps skipped"

# the timed choice from run to run: two fresh timings of DavidNet width 64 fp16, each into its own
# cache file, compared shape by shape (a report, not a pass/fail: the aim is few differences)
for i in 1 2; do
    rm -f "$out/cudnn-algos.fresh$i.txt"
    step "algo_fresh_$i" 120 env ZNET_CUDNN_CACHE="$out/cudnn-algos.fresh$i.txt" "$znet" bench \
        "$davidnet" --backend cuda --set width=64 --batch 512 --precision fp16 --steps 2 --train-only
done
if [ -s "$out/cudnn-algos.fresh1.txt" ] && [ -s "$out/cudnn-algos.fresh2.txt" ]; then
    note "  algorithm choice, two fresh timings: $(sort "$out/cudnn-algos.fresh1.txt" |
        comm -12 - <(sort "$out/cudnn-algos.fresh2.txt") | grep -vc '^#') of" \
         "$(grep -vc '^#' "$out/cudnn-algos.fresh1.txt") shapes chose the same algorithm"
fi

# bench_line NAME: the training figure of a znet bench step, with the epoch and 24-epoch times
bench_line() {
    awk -v n="$1" '/training:/ { for (i = 1; i < NF; i++) if ($(i + 1) == "img/s,")
        printf "  %s: %s train img/s -> %.2f s per epoch, %.0f s for 24 epochs (training steps only)\n",
               n, $i, 50000 / $i, 24 * 50000 / $i }' "$out/$1.txt" | tee -a "$summary"
}

# peer NAME ARGS...: the PyTorch peer's line
peer() {
    local name=$1
    shift
    [ $peer_ok = 1 ] && step "$name" 120 "$python" "$src/tests/bench_zee_torch.py" "$@" \
        --device cuda --batch 512 --width 64 &&
        sed -n "s/.*: train/  $name: train/p" "$out/$name.txt" | tee -a "$summary"
}

for p in fp16 bf16 fp32; do
    name=bench_davidnet_w64_$p
    step "$name" 120 "$znet" bench "$davidnet" --backend cuda --set width=64 --batch 512 \
        --precision $p --steps 20 --train-only && bench_line "$name"
    if [ $p = fp32 ]; then
        peer peer_davidnet_w64_fp32 davidnet --steps 20 --precision fp32
        peer peer_davidnet_w64_tf32 davidnet --steps 20 --precision tf32 --channels-last
    else
        peer "peer_davidnet_w64_${p}_amp_cl" davidnet --steps 20 --precision $p --channels-last
    fi
done
# the graphs' share: the same fp16 step eager; the fused batch norm + relu's: the step unfused
name=bench_davidnet_w64_fp16_graph_off
step "$name" 120 env ZNET_CUDA_GRAPH=off "$znet" bench "$davidnet" --backend cuda --set width=64 \
    --batch 512 --precision fp16 --steps 20 --train-only && bench_line "$name"
name=bench_davidnet_w64_fp16_no_fuse_bn_relu
step "$name" 120 "$znet" bench "$davidnet" --backend cuda --set width=64 --batch 512 \
    --precision fp16 --steps 20 --train-only --no-pass fuse_bn_relu && bench_line "$name"
for p in fp16 fp32; do
    # the z-towers apart (the default) and within the least memory the budget reaches, where it
    # fuses them (a memory lever, docs/memory.md) and recomputes more: the time that memory costs
    least=$("$znet" summary "$zee" --backend cuda --precision $p --batch 512 --memory-curve 2> /dev/null |
        awk '$NF == "fused" || $NF == "apart" { if (!m || $2 < m) m = $2 } END { print m }')
    for budget in "" $least; do
        name=bench_zee_w64_$p${budget:+_least_memory}
        step "$name" 120 "$znet" bench "$zee" --backend cuda --batch 512 --precision $p \
            --steps 10 --train-only ${budget:+--memory-budget $budget} &&
            grep -E 'training:|memory' "$out/$name.txt" | sed "s/^/  $name: /" | tee -a "$summary"
    done
    peer "peer_zee_w64_${p}_amp_cl" zee --steps 10 --precision $p --channels-last
done
# an epoch with the real input pipeline (augmentation, host-to-device copies overlapped): the
# subset's 5,000 images twice; the log's time column is cumulative
if [ -n "$subset" ]; then
    step epoch_davidnet_w64_fp16 180 "$znet" run "$davidnet" --backend cuda --precision fp16 \
        --set width=64 --set train.epochs=2 --set 'train.data=npy(layout = "nchw")' \
        --data "$subset" --test-limit 1000 --quiet --no-save --log "$out/epoch.csv" &&
        awk -F, 'NR > 1 { t = $(NF - 1); printf "  epoch %d: %.3f s (%s img/s)\n", $1, t - last, $NF; last = t }' \
            "$out/epoch.csv" | tee -a "$summary"
fi

# ---- 3. the rest ------------------------------------------------------------------------------
step tests 240 ctest --test-dir "$build" -R 'cuda|parity|check_backends' --output-on-failure
for m in "$src"/models/*.znet; do
    b=$(basename "$m" .znet)
    [ "$b" = davidnet ] || [ "$b" = davidnet_zee ] || step "parity_$b" 90 "$znet" check \
        --backends cpu,cuda --batch 32 "$m"
done
step parity_davidnet_bf16 90 "$znet" check --backends cpu,cuda --precision bf16 --batch 32 "$davidnet"
step parity_zee_w16_bf16 90 "$znet" check --backends cpu,cuda --precision bf16 --batch 32 \
    --set width=16 "$zee"
# the fused z-tower over uneven batch slices (51, 51, 49 at width 64)
step parity_zee_w64_batch151 120 "$znet" check --backends cpu,cuda --batch 151 "$zee"
if command -v compute-sanitizer > /dev/null; then
    for p in fp32 fp16; do
        step "sanitizer_zee_w8_$p" 180 compute-sanitizer --error-exitcode 9 "$znet" check \
            --backends cpu,cuda --precision $p --batch 16 --set width=8 "$zee"
    done
    step sanitizer_test_cuda 180 compute-sanitizer --error-exitcode 9 "$build/tests/test_cuda"
else
    note "compute-sanitizer not found: skipped"
fi
step bench_davidnet_w64_fp16_profile 120 "$znet" bench "$davidnet" --backend cuda \
    --set width=64 --batch 512 --precision fp16 --steps 5 --train-only --profile
# blocks appended below run before the EXIT trap reports; end none of them with `exit`

# ---- data-parallel training through NCCL (issue 18, docs/distributed.md; owned by that work) ----
# One rank under mpirun on the GPU, its gradient sums through NCCL (backends/cuda/cuda_nccl.c),
# against one plain process on the same GPU: the same 20 step losses within 1e-4 (relative).
if command -v mpirun > /dev/null && "$znet" --version | grep -q "MPI yes"; then
    . "$src/tests/shell_support.sh"
    make_idx "$out/mpi_data" 1280 128 # tiny_nobn's 20 steps of 64
    mpi_run=("$znet" run "$src/tests/models/tiny_nobn.znet" --backend cuda --data "$out/mpi_data" --quiet
             --no-save --log-every 1)
    step mpi_plain 120 "${mpi_run[@]}" --log "$out/mpi_plain.jsonl"
    step mpi_nccl_1rank 120 mpirun --allow-run-as-root -np 1 "${mpi_run[@]}" --log "$out/mpi_nccl.jsonl"
    step mpi_nccl_same_losses 10 python3 -c 'import json, sys
def losses(p): return [r["loss"] for r in map(json.loads, open(p)) if r["type"] == "step"]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
sys.exit(not (len(a) == len(b) == 20 and all(abs(x - y) <= 1e-4 * abs(x) for x, y in zip(a, b))))' \
        "$out/mpi_plain.jsonl" "$out/mpi_nccl.jsonl"
    grep -h "all-reduce" "$out/mpi_nccl_1rank.txt" | tee -a "$summary"
else
    note "mpirun or MPI not built: the NCCL check skipped"
fi
