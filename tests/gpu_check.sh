#!/usr/bin/env bash
# gpu_check.sh: every check that needs an NVIDIA GPU (docs/cuda.md, "Checks to run on a GPU"), in
# one run short enough for a brief loan of a GPU machine: the CUDA and parity tests,
# compute-sanitizer on the CUDA test, `znet check --backends cpu,cuda` on every model (fp32; fp16
# and bf16 on two), and `znet bench` of DavidNet width 64, batch 512 in fp32, fp16 and bf16 (with
# the images/s and the implied 24-epoch time). Each step writes OUT_DIR/STEP.txt and one line to
# OUT_DIR/summary.txt; exit 1 when any step failed. Where no GPU is found it says so and exits 1.
# usage: tests/gpu_check.sh BUILD_DIR OUT_DIR   (BUILD_DIR configured with the CUDA backend)
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
step tests 420 ctest --test-dir "$build" -R 'cuda|parity|check_backends' --output-on-failure
if command -v compute-sanitizer > /dev/null; then
    step sanitizer_test_cuda 300 compute-sanitizer --error-exitcode 9 "$build/tests/test_cuda"
else
    echo "compute-sanitizer not found: skipped" | tee -a "$summary"
fi

# parity, node by node, one training step from the same weights and batch (docs/parity.md)
for m in "$src"/models/*.znet; do
    step "parity_$(basename "$m" .znet)" 180 "$znet" check --backends cpu,cuda --batch 32 "$m"
done
for p in fp16 bf16; do
    step "parity_davidnet_$p" 180 "$znet" check --backends cpu,cuda --precision $p --batch 32 \
        "$src/models/davidnet.znet"
    step "parity_zee_w16_$p" 180 "$znet" check --backends cpu,cuda --precision $p --batch 32 \
        --set width=16 "$src/models/davidnet_zee.znet"
done

# speed: DavidNet width 64, batch 512 (the anchors of docs/cuda.md are for this network)
for p in fp32 fp16 bf16; do
    name=bench_davidnet_w64_$p
    if step "$name" 240 "$znet" bench "$src/models/davidnet.znet" --backend cuda --set width=64 \
        --batch 512 --precision $p --steps 20; then
        # 50,000 training images per epoch; the training line says "= N img/s"
        awk -v p=$p '/training:/ { for (i = 1; i < NF; i++) if ($(i + 1) == "img/s,")
            printf "  %s: %s train img/s -> %.2f s per epoch, %.0f s for 24 epochs (training steps only)\n",
                   p, $i, 50000 / $i, 24 * 50000 / $i }' "$out/$name.txt" | tee -a "$summary"
    fi
done
step bench_davidnet_w64_fp16_profile 240 "$znet" bench "$src/models/davidnet.znet" --backend cuda \
    --set width=64 --batch 512 --precision fp16 --steps 5 --train-only --profile
step bench_zee_w64_fp16 240 "$znet" bench "$src/models/davidnet_zee.znet" --backend cuda \
    --batch 512 --precision fp16 --steps 10
exit $failed
