#!/usr/bin/env bash
# run_refusals.sh: what `znet run` refuses before it trains, and that a refusal touches nothing
# already saved: a recipe the data cannot feed (refused before the session is made, so a batch
# whose plan needs many GiB is refused within a small address-space limit), --save and --log
# paths that cannot be written (checked before the data is read), and a --resume checkpoint whose
# step does not fit the run. Each: exit 1, a message naming the flag or file, old files as they were.
# usage: run_refusals.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
make_idx data 64 16

model=$src/models/fashion_small.znet
run=("$znet" run "$model" --data data --threads 1 --quiet --set width=4 --batch 16)
# refused ARGS... -- MESSAGE: the run exits 1 and says MESSAGE, and prints no "training" line
refused() {
    local args=() want
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    want=$2
    "${run[@]}" "${args[@]}" > out 2> err
    local rc=$?
    [ $rc = 1 ] || bad "${args[*]}: exit $rc, want 1: $(cat err)"
    grep -qF -- "$want" err || bad "${args[*]}: no message '$want': $(cat err)"
    grep -q '^training' out && bad "${args[*]}: it started training"
}

# 1. the recipe against the data, before the session: at batch 65536 and width 512 the session's
# plan would need 675 GiB; within 600 MB of address space only the check made first answers. (A
# sanitizer build reserves terabytes of address space at start: it runs without the limit, where
# a session made first would still answer with the memory planner's refusal.)
limit=600000
if [ "$( (ulimit -v $limit && OPENBLAS_NUM_THREADS=1 "$znet" --version > /dev/null && echo starts) 2> /dev/null)" != starts ]; then
    echo "note: $znet cannot start within $limit KB of address space (a sanitizer build?): no ulimit -v"
    limit=unlimited
fi
(
    ulimit -v $limit
    export OPENBLAS_NUM_THREADS=1 # OpenBLAS reserves a stack per core: on many cores, more than the limit
    refused --set width=512 --batch 65536 -- "64 training examples make no full batch of 65536"
    refused --set width=512 --batch 65536 --limit 40 -- "40 training examples make no full batch of 65536"
    refused --batch 24 --set train.drop_last=false -- "64 examples leave a last batch of 16"
    "$znet" run "$src/models/davidnet.znet" --data data --set train.data='"fashion_mnist"' --batch 65536 > out 2> err
    [ $? = 1 ] && grep -qF "but fashion_mnist images are [1, 32, 32]" err || bad "davidnet on fashion_mnist: $(cat err)"
    echo "$failed" > failed.sub
)
failed=$(cat failed.sub)

# 2. --save and --log that cannot be written: refused at once, naming the flag and the path
mkdir folder.ckpt
touch plain
refused --save nowhere/x.ckpt -- "--save nowhere/x.ckpt: the folder nowhere does not exist"
refused --save folder.ckpt -- "--save folder.ckpt is a folder"
refused --save plain/x.ckpt -- "--save plain/x.ckpt: plain is not a folder"
refused --log nowhere/x.jsonl -- "--log nowhere/x.jsonl: the folder nowhere does not exist"
refused --log folder.ckpt -- "--log folder.ckpt is a folder"
if [ -d /sys ] && ! touch /sys/znet-probe 2> /dev/null; then # a folder no one may create files in
    refused --save /sys/x.ckpt -- "--save /sys/x.ckpt: cannot write there"
    refused --log /sys/x.jsonl -- "--log /sys/x.jsonl: cannot write there"
fi
if [ "$(id -u)" != 0 ]; then # (root writes into a read-only folder)
    mkdir ro && chmod 555 ro
    refused --save ro/x.ckpt -- "--save ro/x.ckpt: cannot write there: Permission denied"
fi

# 3. nothing already saved is touched by a refusal: a checkpoint and a log from an earlier run
"${run[@]}" --epochs 1 --save old.ckpt --log old.jsonl > /dev/null 2>&1 || bad "the first run failed"
sum() { md5sum old.ckpt old.jsonl; }
before=$(sum)
refused --save old.ckpt --log nowhere/x.jsonl -- "--log nowhere/x.jsonl: the folder nowhere"
refused --save nowhere/x.ckpt --log old.jsonl -- "--save nowhere/x.ckpt: the folder nowhere"
refused --save old.ckpt --log old.jsonl --batch 128 -- "64 training examples make no full batch of 128"
refused --save old.ckpt --log old.jsonl --resume old.ckpt --epochs 2 --batch 8 -- \
    "old.ckpt is at step 4 after 1 epochs, which does not fit this run's 8 steps per epoch"
[ "$(sum)" = "$before" ] || bad "a refused run changed old.ckpt or old.jsonl"
[ -e old.ckpt.tmp ] && bad "a refused run left old.ckpt.tmp"
# and the probe leaves no file behind where none was
ls nowhere* x.* 2> /dev/null && bad "a refused run left files behind"

if [ "$failed" -gt 0 ]; then
    echo "run_refusals: $failed failure(s)"
    exit 1
fi
echo "run_refusals: all passed"
