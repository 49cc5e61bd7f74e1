#!/usr/bin/env bash
# run_mpi.sh: data-parallel training under mpirun (docs/distributed.md), on a generated
# Fashion-MNIST-format data set (no download): 2 ranks x batch 32 take the same 20 steps as 1
# process x batch 64 on a model without batch norm (losses and weights within float-summation
# tolerance); with per-rank batch norm only the documented difference (close, not equal), and
# with --sync-bn one process's losses and weights again; SIGTERM
# to the job saves on rank 0 and the checkpoint resumes on one process to the uninterrupted run's
# weights; a rank killed with SIGKILL ends the job within a bounded time naming the rank; a rank
# that cannot start stops every rank with its reason; what is refused (a batch the ranks do not
# divide, a bad ZNET_BUCKET_MB, an MPI module that is missing or broken). Built without MPI, it checks that such a znet refuses to run as one
# of several processes, then skips (77); it skips where mpirun is absent.
# usage: run_mpi.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
make_idx data 1280 128
model=$src/tests/models/tiny_nobn.znet
if ! "$znet" --version | grep -q "MPI yes"; then
    # a build without MPI started as one of several processes refuses (what mpirun would set)
    OMPI_COMM_WORLD_SIZE=2 zt_expect 2 "started by mpirun \(OpenMPI\) as one of 2 processes, but this znet was built without MPI" \
        "$znet" run "$model" --data data --no-save
    SLURM_STEP_NUM_TASKS=4 zt_expect 2 "started by srun \(Slurm\) as one of 4 processes" "$znet" run "$model" --data data --no-save
    OMPI_COMM_WORLD_SIZE=1 zt_expect 0 "^epoch  1/1" "$znet" run "$model" --data data --no-save --quiet
    [ "$failed" -gt 0 ] && zt_end run_mpi
    echo "skipped the rest: this znet was built without MPI (-DZNET_MPI=OFF, a sanitizer build or no MPI found)"
    exit 77
fi
if ! command -v mpirun > /dev/null; then
    echo "skipped: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"
    exit 77
fi
# CI runs as root on few cores, maybe in a container without ptrace between processes (which
# shared memory's single-copy transfers use): OpenMPI needs all three said
mpi=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none -np)
common=(--data data --threads 1 --quiet --log-every 1)

# the step losses of a JSON log, one a line
losses() { grep '"type":"step"' "$1" | sed 's/.*"loss":\([^}]*\)}.*/\1/'; }
# the largest difference of two checkpoints' parameters, relative to the largest parameter
ckpt_diff() {
    python3 - "$1" "$2" << 'EOF_PY'
import struct, sys
def params(path):
    b = open(path, 'rb').read()
    n = struct.unpack_from('<Q', b, 40)[0]
    return struct.unpack_from('<%df' % n, b, 56)
a, b = params(sys.argv[1]), params(sys.argv[2])
assert len(a) == len(b) and len(a) > 0
print('%.3g' % (max(abs(x - y) for x, y in zip(a, b)) / max(abs(x) for x in a)))
EOF_PY
}
# whether every pair of lines of files $1 and $2 differs by at most $3 relative
close_lines() {
    paste "$1" "$2" | awk -v tol="$3" 'NF != 2 { bad = 1 } { d = $1 - $2; if (d < 0) d = -d
        m = $1 < 0 ? -$1 : $1; if (d > tol * m) bad = 1 } END { exit bad || NR == 0 }'
}

# 1. no batch norm: 2 ranks x 32 = 1 process x 64, step by step
"$znet" run "$model" "${common[@]}" --log one.jsonl --save one.ckpt > one.out 2>&1 || bad "one process: $(cat one.out)"
"${mpi[@]}" 2 "$znet" run "$model" "${common[@]}" --log two.jsonl --save two.ckpt > two.out 2>&1 ||
    bad "two ranks: $(cat two.out)"
grep -q "batch 64 (32 on each of 2 ranks)" two.out || bad "two ranks: no line about the split: $(cat two.out)"
grep -q "all-reduce on 2 ranks" two.out || bad "two ranks: no all-reduce figures: $(cat two.out)"
[ "$(grep -c '^training' two.out)" -eq 1 ] || bad "two ranks: rank 1 printed results too: $(cat two.out)"
losses one.jsonl > one.loss
losses two.jsonl > two.loss
[ "$(wc -l < one.loss)" -eq 20 ] || bad "one process: not 20 step losses: $(cat one.loss)"
close_lines one.loss two.loss 1e-4 || bad "2 ranks and 1 process differ in their losses: $(paste one.loss two.loss)"
d=$(ckpt_diff one.ckpt two.ckpt) || bad "checkpoints unreadable"
awk -v d="$d" 'BEGIN { exit !(d < 1e-4) }' || bad "2 ranks and 1 process differ in their weights by $d"
echo "weights: 2 ranks vs 1 process after 20 steps: $d (relative)"
# buckets of 1 KiB: many all-reduces started during backward, the same result
ZNET_BUCKET_MB=0.001 "${mpi[@]}" 2 "$znet" run "$model" "${common[@]}" --log small.jsonl --no-save > small.out 2>&1 ||
    bad "small buckets: $(cat small.out)"
grep -Eq "in [0-9]+ buckets" small.out || bad "small buckets: not several: $(cat small.out)"
losses small.jsonl > small.loss
close_lines one.loss small.loss 1e-4 || bad "small buckets change the losses: $(paste one.loss small.loss)"

# 2. per-rank batch norm (the default): each rank normalises by its own 32 examples, so the very
# first loss already differs from one process's, by little
sed 's/relu(conv2d(\([a-z0-9]*\), \([^)]*\)))/relu(batchnorm(conv2d(\1, \2)))/; s/tiny_nobn/tiny_bn/' "$model" > bn.znet
grep -c batchnorm bn.znet | grep -q 2 || bad "bn.znet has no batch norm: $(cat bn.znet)"
"$znet" run bn.znet "${common[@]}" --log bn1.jsonl --save bn1.ckpt > bn1.out 2>&1 || bad "bn, one process: $(cat bn1.out)"
"${mpi[@]}" 2 "$znet" run bn.znet "${common[@]}" --log bn2.jsonl --no-save > bn2.out 2>&1 || bad "bn, 2 ranks: $(cat bn2.out)"
losses bn1.jsonl | head -1 > bn1.loss
losses bn2.jsonl | head -1 > bn2.loss
close_lines bn1.loss bn2.loss 1e-6 && bad "per-rank batch norm gave one process's first loss: $(paste bn1.loss bn2.loss)"
close_lines bn1.loss bn2.loss 0.02 || bad "per-rank batch norm: first losses too far apart: $(paste bn1.loss bn2.loss)"
# --sync-bn: the statistics over both ranks' rows, so one process's steps again
"${mpi[@]}" 2 "$znet" run bn.znet "${common[@]}" --sync-bn --log bns.jsonl --save bns.ckpt > bns.out 2>&1 ||
    bad "bn, 2 ranks, --sync-bn: $(cat bns.out)"
losses bn1.jsonl > bn1all.loss
losses bns.jsonl > bns.loss
close_lines bn1all.loss bns.loss 1e-4 || bad "--sync-bn: 2 ranks and 1 process differ in their losses: $(paste bn1all.loss bns.loss)"
d=$(ckpt_diff bn1.ckpt bns.ckpt) || bad "checkpoints unreadable"
awk -v d="$d" 'BEGIN { exit !(d < 1e-4) }' || bad "--sync-bn: 2 ranks and 1 process differ in their weights by $d"
echo "weights: 2 ranks with --sync-bn vs 1 process after 20 steps: $d (relative)"

# 3. SIGTERM to the job mid-epoch: every rank stops after the same step, rank 0 saves; the
# checkpoint resumes on one process and ends where an uninterrupted run ends
make_idx long 6400 128
# 12 epochs of 100 steps take some seconds: the signal comes after the first epoch's line
"$znet" run "$model" --data long --threads 1 --quiet --epochs 12 --save full.ckpt > full.out 2>&1 || bad "full run: $(cat full.out)"
"${mpi[@]}" 2 "$znet" run "$model" --data long --threads 1 --quiet --epochs 12 --save part.ckpt > part.out 2>&1 &
job=$!
for ((w = 0; w < 6000; w++)); do grep -q '^epoch  1/12' part.out 2> /dev/null && break; sleep 0.01; done
kill -TERM $job
wait $job
grep -q "stopped by SIGTERM after step" part.out || bad "SIGTERM: no stop message: $(cat part.out)"
[ "$(grep -c 'stopped by SIGTERM' part.out)" -eq 1 ] || bad "SIGTERM: more than rank 0 spoke: $(cat part.out)"
"$znet" run "$model" --data long --threads 1 --quiet --epochs 12 --save part.ckpt --resume part.ckpt > resumed.out 2>&1 ||
    bad "resume on one process: $(cat resumed.out)"
grep -q "resumed from part.ckpt" resumed.out || bad "resume: $(cat resumed.out)"
d=$(ckpt_diff full.ckpt part.ckpt) || bad "checkpoints unreadable"
awk -v d="$d" 'BEGIN { exit !(d < 1e-3) }' || bad "stopped on 2 ranks and resumed on 1: weights differ by $d"
echo "weights: 2 ranks stopped and resumed on 1 vs 1 process: $d (relative)"

# 4. kill -9 one rank mid-epoch: mpirun ends the job, names the rank and the signal, in bounded time
timeout 60 "${mpi[@]}" 2 "$znet" run "$model" --data long --threads 1 --quiet --epochs 1000 --save killed.ckpt > kill.out 2>&1 &
job=$!
for ((w = 0; w < 3000; w++)); do grep -q '^training' kill.out 2> /dev/null && break; sleep 0.01; done
sleep 1
victim=
for p in $(pgrep -x znet); do
    tr '\0' '\n' < /proc/$p/environ 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" &&
        [ "$(readlink /proc/$p/cwd)" = "$PWD" ] && victim=$p
done
[ -n "$victim" ] && kill -9 "$victim" || bad "kill: rank 1 not found"
wait $job
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || bad "kill -9 of rank 1: the job exit $rc (124: it hung): $(cat kill.out)"
grep -Eq "rank 1 .*(signal 9|Killed)" kill.out || bad "kill -9 of rank 1: no message naming it: $(cat kill.out)"

# 5. a rank that cannot start (its data folder is missing) stops every rank, saying which and why
zt_expect 1 "\[rank 1\] znet: data set fashion_mnist not found" timeout 60 "${mpi[@]}" 2 bash -c \
    '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && d=missing || d=data; exec "$0" run "$1" --data $d --threads 1 --quiet --no-save' \
    "$znet" "$model"

# 6. refusals, before any training
zt_expect 1 "the batch of 64 does not split evenly over 3 ranks" timeout 60 "${mpi[@]}" 3 "$znet" run "$model" --data data --no-save
ZNET_BUCKET_MB=lots zt_expect 1 "ZNET_BUCKET_MB=lots is not a number of MiB" timeout 60 "${mpi[@]}" 2 "$znet" run "$model" --data data --no-save
ZNET_DIST_TIMEOUT=-1 zt_expect 2 "ZNET_DIST_TIMEOUT=-1 is not a number of seconds" timeout 60 "${mpi[@]}" 1 "$znet" run "$model" --data data --no-save
# the MPI module (runtime/dist.c) missing or not a module: said with its path and why, exit 2,
# before MPI starts (so no mpirun is needed to see it)
OMPI_COMM_WORLD_SIZE=2 ZNET_MPI_MODULE=$PWD/no_such.so zt_expect 2 \
    "started by mpirun \(OpenMPI\), but cannot load the MPI module $PWD/no_such.so: .*No such file" \
    "$znet" run "$model" --data data --no-save
echo "not an ELF file" > bad.so
PMI_SIZE=2 ZNET_MPI_MODULE=$PWD/bad.so zt_expect 2 "cannot load the MPI module $PWD/bad.so: .*(invalid ELF|too short)" \
    "$znet" run "$model" --data data --no-save
# --sync-bn with a z-tower: the CPU backend refuses the fused tower (its statistics are its own),
# so no memory budget fuses it and the tower's batch norm is synchronised like any other
cat > tz.znet << 'EOF_ZNET'
use "zconv.znet"
model tz(width = 4) {
  input image: [1, 28, 28]
  input label: class(10)
  b = maxpool(cbr(image, width), 2)
  head out = xent(zhead(b, zpool(ztower(zstitch([b], 7), [4]))), label)
}
train {
  data = "fashion_mnist"
  batch = 64
  optimizer = sgd(momentum = 0.9)
  lr = piecewise([0, 1], [0.1, 0.02], per_example = true)
}
EOF_ZNET
zt_expect 0 "^final" timeout 60 "${mpi[@]}" 2 "$znet" run tz.znet --data data --sync-bn --no-save --threads 1 --quiet
zt_end run_mpi
