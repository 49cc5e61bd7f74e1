#!/usr/bin/env bash
# gpu_check.sh: every check that needs an NVIDIA GPU (docs/cuda.md, "Checks to run on a GPU"), in
# one run short enough for a brief loan of a GPU machine, most telling first: the CUDA and parity
# tests, `znet check --backends cpu,cuda` on every model (fp32; fp16 and bf16 on two), `znet bench`
# of DavidNet width 64, batch 512 in fp32, fp16 and bf16 beside the PyTorch peer
# (tests/bench_zee_torch.py --device cuda) in the same sitting, the Zee model likewise, a profile,
# and compute-sanitizer on the CUDA test last. Each step writes OUT_DIR/STEP.txt and one line to
# OUT_DIR/summary.txt; exit 1 when any step failed. Where no GPU is found it says so and exits 1.
# usage: tests/gpu_check.sh BUILD_DIR OUT_DIR   (BUILD_DIR configured with the CUDA backend;
#        PYTHON names a python3 with a CUDA PyTorch for the peer, else the peer steps are skipped)
set -u
[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR OUT_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
src=$(cd "$(dirname "$0")/.." && pwd)
out=$2
mkdir -p "$out" || exit 2
summary=$out/summary.txt
: > "$summary"
failed=0
znet=$build/znet

# step NAME SECONDS COMMAND...: runs COMMAND under a time limit, output to OUT_DIR/NAME.txt
step() {
    local name=$1 limit=$2 t0=$SECONDS rc
    shift 2
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    rc=$?
    printf '%-34s %s  %4d s\n' "$name" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")" \
        $((SECONDS - t0)) | tee -a "$summary"
    [ $rc -eq 0 ] || failed=1
    return $rc
}

if ! step gpu 30 nvidia-smi; then
    echo "no NVIDIA GPU or driver here (nvidia-smi failed): nothing to check" | tee -a "$summary"
    exit 1
fi
step tests 240 ctest --test-dir "$build" -R 'cuda|parity|check_backends' --output-on-failure

# parity, node by node, one training step from the same weights and batch (docs/parity.md)
for m in "$src"/models/*.znet; do
    step "parity_$(basename "$m" .znet)" 90 "$znet" check --backends cpu,cuda --batch 32 "$m"
done
# the fused z-tower over uneven batch slices (51, 51, 49 at width 64) and under compute-sanitizer
step parity_zee_w64_batch151 120 "$znet" check --backends cpu,cuda --batch 151 \
    "$src/models/davidnet_zee.znet"
if command -v compute-sanitizer > /dev/null; then
    for p in fp32 fp16; do
        step "sanitizer_zee_w8_$p" 180 compute-sanitizer --error-exitcode 9 "$znet" check \
            --backends cpu,cuda --precision $p --batch 16 --set width=8 "$src/models/davidnet_zee.znet"
    done
fi
for p in fp16 bf16; do
    step "parity_davidnet_$p" 90 "$znet" check --backends cpu,cuda --precision $p --batch 32 \
        "$src/models/davidnet.znet"
    step "parity_zee_w16_$p" 90 "$znet" check --backends cpu,cuda --precision $p --batch 32 \
        --set width=16 "$src/models/davidnet_zee.znet"
done

# speed, znet then the PyTorch peer for each precision: DavidNet width 64, batch 512 (the anchors
# of docs/cuda.md are for this network), then the Zee model
python=${PYTHON:-python3}
peer_ok=0
"$python" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2> /dev/null && peer_ok=1
[ $peer_ok = 1 ] || echo "no CUDA PyTorch in $python: peer steps skipped" | tee -a "$summary"
for p in fp32 fp16 bf16; do
    name=bench_davidnet_w64_$p
    if step "$name" 120 "$znet" bench "$src/models/davidnet.znet" --backend cuda --set width=64 \
        --batch 512 --precision $p --steps 20 --train-only; then
        # 50,000 training images per epoch; the training line says "= N img/s"
        awk -v p=$p '/training:/ { for (i = 1; i < NF; i++) if ($(i + 1) == "img/s,")
            printf "  %s: %s train img/s -> %.2f s per epoch, %.0f s for 24 epochs (training steps only)\n",
                   p, $i, 50000 / $i, 24 * 50000 / $i }' "$out/$name.txt" | tee -a "$summary"
    fi
    # the peer in fp32 twice: without TF32 as znet's fp32, and with it, PyTorch's default
    for q in $p $([ $p = fp32 ] && echo tf32); do
        [ $peer_ok = 1 ] && step "peer_davidnet_w64_$q" 120 "$python" \
            "$src/tests/bench_zee_torch.py" davidnet --device cuda --width 64 --batch 512 \
            --steps 20 --precision $q &&
            sed -n "s/.*: train/  peer $q: train/p" "$out/peer_davidnet_w64_$q.txt" | tee -a "$summary"
    done
done
for p in fp32 fp16; do
    # the fused z-tower (docs/passes.md) and, for its cost, the tower's layers apart
    for np in "" ztower; do
        name=bench_zee_w64_$p${np:+_no_$np}
        step "$name" 120 "$znet" bench "$src/models/davidnet_zee.znet" --backend cuda --batch 512 \
            --precision $p --steps 10 --train-only ${np:+--no-pass $np} &&
            grep -E 'training:|memory' "$out/$name.txt" | tee -a "$summary"
    done
    [ $peer_ok = 1 ] && step "peer_zee_w64_$p" 120 "$python" "$src/tests/bench_zee_torch.py" \
        zee --device cuda --width 64 --batch 512 --steps 10 --precision $p &&
        sed -n "s/.*: train/  peer $p: train/p" "$out/peer_zee_w64_$p.txt" | tee -a "$summary"
done
step bench_davidnet_w64_fp16_profile 120 "$znet" bench "$src/models/davidnet.znet" --backend cuda \
    --set width=64 --batch 512 --precision fp16 --steps 5 --train-only --profile
if command -v compute-sanitizer > /dev/null; then
    step sanitizer_test_cuda 180 compute-sanitizer --error-exitcode 9 "$build/tests/test_cuda"
else
    echo "compute-sanitizer not found: skipped" | tee -a "$summary"
fi

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
    echo "mpirun or MPI not built: the NCCL check skipped" | tee -a "$summary"
fi
exit $failed
