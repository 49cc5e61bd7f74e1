#!/usr/bin/env bash
# run_ckpt_v1.sh: a checkpoint of format version 1 (written before fingerprints hashed op names,
# when they hashed enum numbers) still loads into its model. tests/data/zee_w2_v1.ckpt was written
# by the version-1 binary with `znet run models/davidnet_zee.znet --set width=2 --set channels=1
# --set train.data='"fashion_mnist"' --batch 64 --epochs 1 --limit 256 --test-limit 256
# --threads 1 --save zee_w2_v1.ckpt`. It loads (on generated data), other --set values are
# refused, and on the real Fashion-MNIST its evaluation gives what the old binary gave (counts out
# of 256 examples, so rounding-level differences between CPUs cannot move them). Skips (77) the
# last part only when Debian's Fashion-MNIST is absent.
# usage: run_ckpt_v1.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
make_idx data 64 64

ckpt=$src/tests/data/zee_w2_v1.ckpt
eval_v1() {
    "$znet" eval "$src/models/davidnet_zee.znet" --set channels=1 \
        --set train.data='"fashion_mnist"' --weights "$ckpt" --test-limit 256 --threads 1 "$@"
}

eval_v1 --set width=2 --data data > out 2> err ||
    bad "the version-1 checkpoint did not load: $(cat err)"
grep -q "after 1 epochs" out || bad "no 'after 1 epochs' in: $(cat out)"
eval_v1 --set width=4 --data data > out 2> err && bad "width 4 loaded a width-2 checkpoint"
grep -q "saved from another model" err || bad "no 'saved from another model' in: $(cat err)"

fashion=/usr/share/datasets/fashion-mnist
if [ ! -f $fashion/t10k-images-idx3-ubyte.gz ]; then
    echo "skipped: no Fashion-MNIST in $fashion (apt-get install dataset-fashion-mnist)"
    [ $failed = 0 ] && exit 77
    exit 1
fi
eval_v1 --set width=2 --data $fashion > out 2> err || bad "eval on $fashion failed: $(cat err)"
for want in "head h1 +accuracy 0.0898" "head h2 +accuracy 0.0820" "head h3 +accuracy 0.0859" \
            "vote +accuracy 0.0859"; do
    grep -Eq "$want" out || bad "no '$want' (the old binary's figure) in: $(cat out)"
done
[ $failed = 0 ] && echo "ok: the version-1 checkpoint loads, its weights give the old figures"
exit $((failed > 0))
