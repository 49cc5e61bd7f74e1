#!/usr/bin/env bash
# run_kill.sh: `znet run` survives kills and interrupts. On a tiny generated Fashion-MNIST-format
# data set (so it needs no download), with a checkpoint saved every epoch of 4 steps: 24 runs
# killed with SIGKILL at random moments (the checkpoint on disk loads with `znet eval` and
# `--resume` continues from it); SIGINT and SIGTERM (exit 130 / 143, the printed resume command
# finishes the run with the same final checkpoint, byte for byte, as a run never stopped); a
# second SIGINT exits at once. docs/testing.md, "Kills and interrupts".
# usage: run_kill.sh ZNET SOURCE_DIR [TRIALS]
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR [TRIALS]" "$@"
trials=${3:-24}
make_idx data 64 16

# a wide one-layer network: steps of milliseconds and a 10 MB checkpoint, so that saves take
# much of each run's time and kills land in them
cat > mlp.znet << 'EOF'
model kill_mlp(hidden = 1024) {
  input image: [1, 28, 28]
  input label: class(10)
  head out = xent(linear(relu(linear(flatten(image), hidden)), 10), label)
}
train {
  data = "fashion_mnist"
  batch = 16
  optimizer = sgd(momentum = 0.9, nesterov = true)
  lr = piecewise([0, 2, 12], [0, 0.02, 0])
  augment = [flip(0.5)]
}
EOF
run=("$znet" run mlp.znet --data data --threads 1 --quiet) # 4 steps an epoch
# the epochs a checkpoint holds, from `znet eval`; fails when it does not load
epochs_in() {
    "$znet" eval mlp.znet --data data --threads 1 --weights "$1" > eval.out 2>&1 &&
        sed -n 's/.*(.* after \([0-9]*\) epochs).*/\1/p' eval.out
}

# 1. SIGKILL at random moments after the first save: the checkpoint left loads, and --resume
# continues from it to the next epoch
in_save=0
for ((t = 1; t <= trials; t++)); do
    rm -f k.ckpt k.ckpt.tmp
    "${run[@]}" --epochs 1000 --save k.ckpt > /dev/null 2>&1 &
    pid=$!
    wait_for k.ckpt "" || bad "trial $t: no first checkpoint"
    sleep "0.$(printf '%03d' $((RANDOM % 300)))"
    kill -9 "$pid"
    wait "$pid" 2> /dev/null
    [ -e k.ckpt.tmp ] && in_save=$((in_save + 1))
    e=$(epochs_in k.ckpt) || { bad "trial $t: the checkpoint left by kill -9 does not load: $(tail -1 eval.out)"; continue; }
    "${run[@]}" --epochs $((e + 1)) --save k.ckpt --resume k.ckpt > resume.out 2>&1 ||
        bad "trial $t: --resume after kill -9 failed: $(tail -1 resume.out)"
    [ -e k.ckpt.tmp ] && bad "trial $t: the resumed run left k.ckpt.tmp behind"
    [ "$(epochs_in k.ckpt)" = $((e + 1)) ] || bad "trial $t: the resumed run's checkpoint: $(tail -1 eval.out)"
done
echo "kill -9: $trials trials, $in_save of them inside a save (k.ckpt.tmp left behind)"

# 2. SIGINT and SIGTERM at a random moment: exit code, the printed command finishes the run, and
# its final checkpoint is the uninterrupted run's, byte for byte. Batches of 4 (16 steps an
# epoch) make most interrupts land mid-epoch.
# The interrupts come at a random moment within the first 60% of the time the uninterrupted run
# took on this machine, so that they land inside the run however fast it is.
start=$(date +%s%N)
"${run[@]}" --batch 4 --epochs 12 --save ref.ckpt > /dev/null 2>&1 || bad "the uninterrupted run failed"
span_ms=$((($(date +%s%N) - start) * 6 / 10000000))
# A run can still finish before its signal (the reference run may have been slowed by tests beside
# it), or the signal can land after training, as the process exits (its handlers already given
# back): either way no "stopped by" line and the reference's checkpoint. That has tested nothing,
# and the run is made again with half the delay, up to 5 times.
for sig in INT TERM INT TERM; do
    want=$((128 + $(kill -l "$sig")))
    span=$span_ms
    for ((try = 1; ; try++)); do
        rm -f s.ckpt 's log.jsonl' sig.out
        "${run[@]}" --batch 4 --epochs 12 --save s.ckpt --log 's log.jsonl' > sig.out 2> sig.err &
        pid=$!
        wait_for sig.out '^training' || bad "SIG$sig: the run did not start"
        ms=$((RANDOM * 32768 + RANDOM))
        ms=$((ms % (span + 1)))
        sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
        kill "-$sig" "$pid" 2> /dev/null
        wait "$pid"
        rc=$?
        ! grep -q "stopped by" sig.err && [ "$try" -lt 5 ] && cmp -s s.ckpt ref.ckpt || break
        span=$((span / 2))
    done
    [ "$rc" = "$want" ] || { bad "SIG$sig: exit $rc, want $want: $(cat sig.err)"; continue; }
    grep -q "stopped by SIG$sig " sig.err || bad "SIG$sig: no 'stopped by' line: $(cat sig.err)"
    cmd=$(grep -A1 '^continue with:' sig.err | tail -1)
    case "$cmd" in *" --resume s.ckpt") ;; *) bad "SIG$sig: no resume command: $(cat sig.err)"; continue ;; esac
    eval "$cmd" > resumed.out 2>&1 || bad "SIG$sig: the printed command failed: $(tail -2 resumed.out)"
    grep -q "^resumed from s.ckpt" resumed.out || bad "SIG$sig: the printed command did not resume"
    cmp -s s.ckpt ref.ckpt || bad "SIG$sig: interrupted + resumed differs from the uninterrupted run ($(grep '^znet: stopped' sig.err))"
    [ "$(grep -c '"type":"epoch"' 's log.jsonl')" = 12 ] || bad "SIG$sig: the log does not hold 12 epochs"
    early=""
    [ "$try" -gt 1 ] && early=" (after $((try - 1)) run(s) the signal missed)"
    echo "SIG$sig: $(grep '^znet: stopped' sig.err | sed 's/; saved.*//'), resumed: same final checkpoint$early"
done

# 3. --no-save: SIGINT says nothing was saved
"${run[@]}" --epochs 1000 --no-save > nosave.out 2> nosave.err &
pid=$!
wait_for nosave.out '^training' || bad "--no-save: the run did not start"
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" = 130 ] && grep -q "nothing was saved (--no-save)" nosave.err || bad "--no-save + SIGINT: exit $rc: $(cat nosave.err)"

# 4. a second SIGINT exits at once: sent as soon as the first is acknowledged, within a step of
# fashion_small at width 128 on a batch of 64 (a second or more), so no checkpoint gets written.
# Should the step still end first (the run then stops normally, "stopped by SIGINT"), it is tried
# again, up to 3 times.
for ((try = 1; try <= 3; try++)); do
    rm -f d.ckpt double.out double.err
    "$znet" run "$src/models/fashion_small.znet" --data data --set width=128 --batch 64 --threads 1 --quiet \
        --save d.ckpt > double.out 2> double.err &
    pid=$!
    wait_for double.out '^training' || bad "double SIGINT: the run did not start"
    kill -INT "$pid"
    wait_for double.err 'finishing the step' || bad "double SIGINT: the first was not acknowledged"
    kill -INT "$pid"
    wait "$pid"
    rc=$?
    grep -q "stopped by SIGINT" double.err || break
done
[ "$rc" = 130 ] || bad "double SIGINT: exit $rc: $(cat double.err)"
grep -q "interrupted again: stopping at once" double.err || bad "double SIGINT: $(cat double.err)"
[ -e d.ckpt ] && bad "double SIGINT: a checkpoint was written"
echo "double SIGINT: exit $rc, nothing written"

if [ "$failed" -gt 0 ]; then
    echo "run_kill: $failed failure(s)"
    exit 1
fi
echo "run_kill: all passed"
