#!/usr/bin/env bash
# run_sweep.sh: `znet sweep` on tiny runs (a generated Fashion-MNIST-format data set, no download):
# a sweep stopped with SIGTERM part-way is continued by the same command (the finished run
# skipped, the stopped one resumed to the same final checkpoint as a run never stopped, the one
# not started started; finished runs copied without their checkpoints are still finished); a run that fails or crashes is named with its output file while the
# others go on (exit 1); a second sweep leaves runs another holds alone; --jobs splits the
# threads; bad grids and options are refused before any run starts; --adopt takes a finished run
# made outside the sweep in as its run, and refuses a log of another run (docs/sweep.md).
# usage: run_sweep.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
make_idx data 64 16

# fashion_small at width 2: a run of 60 epochs of 16 steps takes a few seconds
model=$src/models/fashion_small.znet
cfg="fashion_small width=2 train.epochs=60 train.batch=4"
sweep=("$znet" sweep S "$model" --data data --threads 1 --set width=2 --epochs 60 --batch 4)
run_dir() { echo S/fashion_small_*_seed"$1"; }

# 1. bad grids and options: exit 2 (a value that does not compile: 1), nothing made
zt_expect 2 "an empty value \(value 2" "$znet" sweep B "$model" --set width=8,,16
zt_expect 2 "an unclosed '\['" "$znet" sweep B "$model" --set 'width=[8,16'
zt_expect 2 "a '\]' at column 2 closes nothing" "$znet" sweep B "$model" --set 'width=8],16'
zt_expect 2 "--set width is given twice" "$znet" sweep B "$model" --set width=8 --set width=16
zt_expect 2 "seeds are given with --seeds" "$znet" sweep B "$model" --seed 3
zt_expect 2 "--seeds '0,1,0' names a seed twice" "$znet" sweep B "$model" --seeds 0,1,0
zt_expect 2 "--seeds needs integers" "$znet" sweep B "$model" --seeds 0,x
zt_expect 2 "no model file after the folder B" "$znet" sweep B
zt_expect 2 "the model .*fashion_small.znet is given twice" "$znet" sweep B "$model" "$src/models/../models/fashion_small.znet"
zt_expect 1 "in the configuration .*fashion_small.znet width=zz; no run was started" "$znet" sweep B "$model" --set width=8,zz
[ -e B ] && [ -n "$(ls B)" ] && bad "a refused sweep made run folders: $(ls B)"

# 2. stopped part-way and continued: seed 0 finished, seed 1 stopped by SIGTERM after its first
# epoch, seed 2 not started
"${sweep[@]}" --seeds 0,1,2 > first.out 2>&1 &
pid=$!
wait_for first.out "finished $cfg seed 0" || bad "seed 0 did not finish: $(cat first.out)"
wait_for "$(run_dir 1)/run.ckpt" "" || bad "seed 1 saved no checkpoint"
# another sweep of the same folder leaves the runs this one holds alone
"${sweep[@]}" --seeds 1,2 > other.out 2>&1 || bad "the second sweep: exit $?: $(cat other.out)"
grep -q "skipped $cfg seed 1: another znet sweep is running it" other.out || bad "second sweep: $(cat other.out)"
grep -q "0 to run" other.out || bad "the second sweep ran something: $(cat other.out)"
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" = 143 ] || bad "SIGTERM: the sweep exited $rc, want 143: $(cat first.out)"
grep -q "stopped $cfg seed 1 .*saved" first.out || bad "no 'stopped' line for seed 1: $(cat first.out)"
grep -q '"type":"final"' "$(run_dir 1)/log.jsonl" && bad "seed 1 finished before the SIGTERM came: make the runs longer"
grep -q "stopped by SIGTERM" "$(run_dir 1)/output.txt" || bad "seed 1's output: $(tail -3 "$(run_dir 1)/output.txt")"
[ -e "$(run_dir 2)/log.jsonl" ] && bad "seed 2 started after the SIGTERM"
"${sweep[@]}" --seeds 0,1,2 > second.out 2>&1 || bad "the continued sweep: exit $?: $(cat second.out)"
grep -q "1 finished before, 2 to run" second.out || bad "continued sweep: $(head -1 second.out)"
grep -q "continue $cfg seed 1" second.out || bad "seed 1 was not continued: $(cat second.out)"
grep -q "start $cfg seed 2" second.out || bad "seed 2 was not started: $(cat second.out)"
grep -q "3 finished (2 now), 0 failed, 0 left" second.out || bad "continued sweep: $(tail -1 second.out)"
grep -q "^resumed from S/.*seed1/run.ckpt" "$(run_dir 1)/output.txt" || bad "seed 1 did not resume from its checkpoint"
[ "$(grep -c '"type":"epoch"' "$(run_dir 1)/log.jsonl")" = 60 ] || bad "seed 1's log does not hold 60 epochs"
# seed 1, stopped and resumed, ends where a run never stopped ends
"$znet" sweep R "$model" --data data --threads 1 --set width=2 --epochs 60 --batch 4 --seeds 1 > ref.out 2>&1 || bad "reference sweep: $(cat ref.out)"
cmp -s "$(run_dir 1)/run.ckpt" R/fashion_small_*_seed1/run.ckpt || bad "seed 1 stopped and resumed differs from a run never stopped"
"${sweep[@]}" --seeds 0,1,2 > third.out 2>&1 || bad "a finished sweep again: exit $?"
grep -q "3 finished before, 0 to run" third.out || bad "finished sweep again: $(cat third.out)"
# a finished run is its manifest and log: copied alone (as docs/results keeps them), still finished
for d in S/*; do mkdir -p "K/${d#S/}" && cp "$d/manifest.json" "$d/log.jsonl" "K/${d#S/}/"; done
"$znet" sweep K "$model" --data data --threads 1 --set width=2 --epochs 60 --batch 4 --seeds 0,1,2 > kept.out 2>&1 ||
  bad "a sweep over copied logs: exit $?: $(cat kept.out)"
grep -q "3 finished before, 0 to run" kept.out || bad "copied logs: $(cat kept.out)"
echo "stopped, continued: $(tail -1 second.out)"

# 3. a run that fails (a batch the 64 examples cannot fill) and one that crashes (SIGKILL) are
# named with their output files; the others go on; exit 1. The crashed one continues next time.
"$znet" sweep F "$model" --data data --threads 1 --set width=2 --epochs 1 --set train.batch=128,4 > fail.out 2>&1
rc=$?
[ "$rc" = 1 ] || bad "a failing run: exit $rc, want 1: $(cat fail.out)"
grep -q "FAILED fashion_small width=2 train.epochs=1 train.batch=128 seed 0 (exit 1): see F/.*/output.txt" fail.out ||
    bad "the failed run is not named: $(cat fail.out)"
grep -q "finished fashion_small width=2 train.epochs=1 train.batch=4 seed 0" fail.out || bad "the sweep did not go on: $(cat fail.out)"
"${sweep[@]/#S/C}" --seeds 5,6 > crash.out 2>&1 &
pid=$!
wait_for crash.out "start $cfg seed 5" || bad "crash: seed 5 did not start"
wait_for "$(echo C/*_seed5)/run.ckpt" "" || bad "crash: seed 5 saved no checkpoint"
pkill -KILL -P "$pid" # the child running seed 5, after its first checkpoint
wait "$pid"
rc=$?
[ "$rc" = 1 ] || bad "a crashed run: exit $rc, want 1: $(cat crash.out)"
grep -q "FAILED $cfg seed 5 (killed by signal 9): see C/" crash.out || bad "the crash is not named: $(cat crash.out)"
grep -q "finished $cfg seed 6" crash.out || bad "the sweep did not go on after the crash: $(cat crash.out)"
"${sweep[@]/#S/C}" --seeds 5,6 > crash2.out 2>&1 || bad "after the crash: $(cat crash2.out)"
grep -q "continue $cfg seed 5" crash2.out || bad "the crashed run was not continued: $(cat crash2.out)"
# Ctrl-C (SIGINT) stops the run under way the same way: saved, exit 130
"${sweep[@]/#S/C}" --seeds 8 > int.out 2>&1 &
pid=$!
wait_for int.out "start $cfg seed 8" || bad "SIGINT: seed 8 did not start"
wait_for "$(echo C/*_seed8)/run.ckpt" "" || bad "SIGINT: seed 8 saved no checkpoint"
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" = 130 ] && grep -q "stopped $cfg seed 8 .*saved" int.out || bad "SIGINT: exit $rc: $(cat int.out)"

# 4. another model in the same folder under a name of its own, two runs at once with the threads
# split between them
sed 's/model fashion_small/model other_small/' "$model" > other.znet
"$znet" sweep S other.znet --name "other net" --set width=2 --batch 4 --data data --threads 2 --jobs 2 --epochs 2 --seeds 0,1 > jobs.out 2>&1 ||
    bad "--jobs 2: exit $?: $(cat jobs.out)"
grep -q "2 at once with 1 threads each" jobs.out || bad "--jobs 2 --threads 2: $(head -1 jobs.out)"
grep -q -- "--threads 1 " S/other_small_*_seed1/output.txt || bad "a run of --jobs 2 --threads 2 did not get 1 thread"
"$znet" compare S > table.md || bad "compare of the shared folder: exit $?: $(cat table.md)"
grep -q "^| $cfg | 3 |" table.md || bad "compare: no fashion_small row of 3 runs: $(cat table.md)"
grep -q "^| other net | 2 |" table.md || bad "compare: no other_small row of 2 runs: $(cat table.md)"

# 5. --adopt: a run made with `znet run` taken in as the sweep's run of its configuration and seed
one=("$znet" run "$model" --data data --threads 1 --set width=2 --epochs 2 --batch 4 --quiet)
adopt=("$znet" sweep A "$model" --data data --threads 1 --set width=2 --epochs 2 --batch 4)
"${one[@]}" --set train.seed=3 --log own.jsonl --save own.ckpt > own.out 2>&1 || bad "znet run for --adopt: $(cat own.out)"
zt_expect 2 "--adopt takes one run: .* \(this names 2\)" "${adopt[@]}" --seeds 3,4 --adopt own.jsonl
zt_expect 1 "cannot adopt own.jsonl: it is a run of fashion_small with .* seed 3; the configuration .* seed 4 is" \
    "${adopt[@]}" --seeds 4 --adopt own.jsonl
zt_expect 1 "cannot adopt own.jsonl: it is a run of .* batch 4, 2 epochs, .* batch 4, 3 epochs" \
    "$znet" sweep A "$model" --data data --set width=2 --epochs 3 --batch 4 --seeds 3 --adopt own.jsonl
head -n -1 own.jsonl > cut.jsonl
zt_expect 1 "cannot adopt cut.jsonl: it has no final record" "${adopt[@]}" --seeds 3 --adopt cut.jsonl
printf '{"type":"run","model":"fashion_small"}\n{"epoch":\n' > bad.jsonl
zt_expect 1 "cannot adopt bad.jsonl:2: " "${adopt[@]}" --seeds 3 --adopt bad.jsonl
zt_expect 1 "cannot adopt nothing.jsonl: No such file" "${adopt[@]}" --seeds 3 --adopt nothing.jsonl
sed 's/,"seed":3//' own.jsonl > noseed.jsonl
zt_expect 1 "cannot adopt noseed.jsonl: its run record has no \"seed\"" "${adopt[@]}" --seeds 3 --adopt noseed.jsonl
[ -e A ] && bad "a refused --adopt made files: $(ls -R A)"
zt_expect 0 "adopted own.jsonl as fashion_small width=2 train.epochs=2 train.batch=4 seed 3: A/" \
    "${adopt[@]}" --seeds 3 --adopt own.jsonl
cmp -s own.jsonl A/*_seed3/log.jsonl || bad "the adopted log differs from its source"
grep -q '"adopted":"own.jsonl"' A/*_seed3/manifest.json || bad "the manifest does not name the source: $(cat A/*_seed3/manifest.json)"
zt_expect 1 "cannot adopt own.jsonl: A/.*_seed3 holds a run already" "${adopt[@]}" --seeds 3 --adopt own.jsonl
run3=$(echo A/*_seed3)
zt_expect 1 "cannot adopt $run3/log.jsonl: it is the log of the run folder $run3 itself" \
    "${adopt[@]}" --seeds 3 --adopt "$run3/log.jsonl"
cmp -s own.jsonl "$run3/log.jsonl" && [ -e "$run3/manifest.json" ] || bad "a refused --adopt changed the adopted run"
zt_expect 0 "1 finished before, 1 to run" "${adopt[@]}" --seeds 3,4
# an adoption cut short before its log was in place (its manifest alone): the sweep trains that
# run, and its manifest no longer says adopted
"${adopt[@]/#A/A2}" --seeds 3 --adopt own.jsonl > a2.out 2>&1 || bad "adopt into A2: $(cat a2.out)"
rm A2/*_seed3/log.jsonl
zt_expect 0 "0 finished before, 1 to run" "${adopt[@]/#A/A2}" --seeds 3
grep -q '"adopted"' A2/*_seed3/manifest.json && bad "a run the sweep trained is still marked adopted"
"$znet" compare A > adopted.md || bad "compare after --adopt: exit $?: $(cat adopted.md)"
grep -q "^| fashion_small width=2 train.epochs=2 train.batch=4 | 2 |" adopted.md || bad "compare: $(cat adopted.md)"
grep -q "^- fashion_small width=2 train.epochs=2 train.batch=4 seed 3: own.jsonl$" adopted.md ||
    bad "compare does not name the adopted run: $(cat adopted.md)"
zt_end run_sweep
