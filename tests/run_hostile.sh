#!/usr/bin/env bash
# run_hostile.sh: hostile inputs through the `znet` command. (1) absurd sizes, each a `znet check`
# or `znet summary` with --set values, refused by name with exit 1 before anything is allocated;
# (2) damaged checkpoints and data folders given to `run` and `eval` on tiny generated
# Fashion-MNIST files: exit 1, a message naming the file, and the checkpoint already saved
# byte-for-byte untouched. usage: run_hostile.sh ZNET SOURCE_DIR
set -u
znet=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ZNET_STDLIB=$src/stdlib
failed=0
cases=0
fail() { echo "FAIL: $*"; sed 's/^/    /' "$tmp/out"; failed=$((failed + 1)); }

# runs "$@" (a znet command line), wants exit $want_rc and the fragment $want in its output
expect() {
    local want_rc=$1 want=$2
    shift 2
    cases=$((cases + 1))
    timeout 60 "$znet" "$@" > "$tmp/out" 2>&1
    local rc=$?
    [ "$rc" -eq "$want_rc" ] || { fail "znet $*: exit $rc, want $want_rc"; return; }
    grep -qF -- "$want" "$tmp/out" || fail "znet $*: no message '$want'"
}

# ---- (1) absurd sizes: one model whose every size is a parameter ----
cat > "$tmp/sizes.znet" <<'EOF'
model sizes(width = 16, ch = 3, side = 32, classes = 10, k = 3, stride = 1, pad = 1, dil = 1, pool = 2,
            units = 10, size = 8, groups = 1, s = 1.0) {
  input image: [ch, side, side]
  input label: class(classes)
  x = conv2d(image, width, kernel = k, stride = stride, pad = pad, dilation = dil, groups = groups)
  y = maxpool(x, pool)
  z = stitch(y, size = size)
  head out = xent(linear(gmp(y), units) * s, label)
}
train {
  data = "fashion_mnist"
  batch = 16
}
EOF
expect 0 "ok: model sizes" check "$tmp/sizes.znet" # the model itself is sound
# command | space-separated KEY=VALUE settings | the message
while IFS='|' read -r cmd sets want; do
    [ -n "$cmd" ] || continue
    args=()
    for s in $sets; do args+=(--set "$s"); done
    expect 1 "$want" "$cmd" "${args[@]}" "$tmp/sizes.znet"
done <<'CASES'
check|width=1e12|conv2d: 'filters' must be an integer, got number 1e+12
check|width=1000000000000|conv2d: 'filters' must be from 1 to 1048576, got 1000000000000
check|width=9223372036854775807|'filters' must be from 1 to 1048576, got 9223372036854775807
check|width=0|'filters' must be from 1 to 1048576, got 0
check|width=-(-9223372036854775807-1)|integer overflow in -(-9223372036854775808)
check|side=65536|shape [N, 3, 65536, 65536] has more than 2^31 elements per example
check|side=4294967296|input sizes must be integers from 1 to 1048576; got 4294967296
check|side=0|input sizes must be integers from 1 to 1048576; got 0
check|ch=1048576 side=1048576|shape [N, 1048576, 1048576, 1048576] has more than 2^31 elements
check|classes=1099511627776|class: 'n' must be from 2 to 1048576, got 1099511627776
check|k=35|conv2d: kernel 35 with pad 1 does not fit input 32x32
check|k=4294967299|conv2d: 'kernel' must be from 1 to 64, got 4294967299
check|k=[1,1099511627776]|conv2d: 'kernel' must be from 1 to 64, got 1099511627776
check|stride=0|conv2d: 'stride' must be from 1 to 64, got 0
check|pad=4294967296|conv2d: 'pad' must be from 0 to 1024, got 4294967296
check|dil=20|conv2d: kernel 3 with dilation 20 and pad 1 does not fit input 32x32
check|pool=1000|maxpool: kernel 1000 does not fit input 32x32
check|units=1099511627776|linear: 'out' must be from 1 to 1048576, got 1099511627776
check|size=40000|stitch: shape [N, 40000, 16, 40000] has more than 2^31 elements per example
check|size=1099511627776|stitch: 'size' must be from 1 to 65536, got 1099511627776
check|groups=4294967296|conv2d: 'groups' must be from 1 to 1048576, got 4294967296
check|s=1e39|scale factor 1e+39 is beyond the range of float32
check|train.batch=2147483648|train: 'batch' must be an integer from 1 to 65536, got 2147483648
check|train.batch=1e9|train: 'batch' must be an integer from 1 to 65536, got 1e+09
check|train.epochs=4294967297|train: 'epochs' must be an integer from 1 to 100000, got 4294967297
check|train.augment=[cutout(4294967304)]|cutout: size must be from 1 to 1024, got 4294967304
check|train.augment=[pad_crop(1099511627776)]|pad_crop: pad must be from 0 to 64, got 1099511627776
summary|train.std=[1e-300]|train: 'std' must be a list of 1 or 3 positive numbers
CASES
# a model that fits every rule but whose plan cannot: named before any allocation
expect 1 "needs 1.1 TiB by the memory plan" bench --set width=1048576 --steps 1 "$tmp/sizes.znet" --batch 128
# flags: exit 2, the flag named
expect 2 "--batch needs an integer from 1 to 65536, got '2147483648'" summary --batch 2147483648 "$tmp/sizes.znet"
expect 2 "--limit needs an integer from 1 to 1073741824" run --limit 1099511627776 "$tmp/sizes.znet"
expect 2 "--steps needs an integer from 1 to 100000" bench --steps 1099511627776 "$tmp/sizes.znet"
expect 2 "--threads needs an integer from 0 to 1024" bench --threads 4294967296 "$tmp/sizes.znet"

# ---- (2) damaged checkpoints and data folders through run and eval ----
# a big-endian 32-bit IDX header field; make_idx (shell_support.sh) writes the tiny data sets
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
. "$(dirname "$0")/shell_support.sh"
data=$tmp/fashion
make_idx "$data" 40 20
model=$src/models/fashion_small.znet
tiny=(--set width=2 --batch 20)            # eval's options; run adds these:
once=(--epochs 1 --quiet)
ckpt=$tmp/good.ckpt
if ! "$znet" run "$model" "${tiny[@]}" "${once[@]}" --data "$data" --save "$ckpt" > "$tmp/out" 2>&1 || [ ! -s "$ckpt" ]; then
    fail "the tiny training run that makes the checkpoint"
else
    sum=$(cksum < "$ckpt")
    size=$(stat -c %s "$ckpt")
    head -c 11 "$ckpt" > "$tmp/cut11.ckpt"
    head -c $((size / 2)) "$ckpt" > "$tmp/half.ckpt"
    head -c $((size - 1)) "$ckpt" > "$tmp/short.ckpt"
    { cat "$ckpt"; printf x; } > "$tmp/long.ckpt"
    cp "$ckpt" "$tmp/flip.ckpt"
    printf '\x55' | dd of="$tmp/flip.ckpt" bs=1 seek=$((size - 40)) conv=notrunc status=none
    printf 'not a checkpoint at all' > "$tmp/text.ckpt"
    while IFS='|' read -r file want; do
        [ -n "$file" ] || continue
        expect 1 "$tmp/$file $want" eval "$model" "${tiny[@]}" --data "$data" --weights "$tmp/$file"
        # a resume from it stops before the first step and leaves the saved checkpoint alone
        expect 1 "$tmp/$file $want" run "$model" "${tiny[@]}" "${once[@]}" --data "$data" \
            --resume "$tmp/$file" --save "$ckpt"
        [ "$(cksum < "$ckpt")" = "$sum" ] || fail "--resume $file changed $ckpt"
    done <<CASES
cut11.ckpt|is truncated: it ends after 11 bytes, inside its 56-byte header
half.ckpt|is truncated: it ends after $((size / 2)) bytes, the header says $size
short.ckpt|is truncated: it ends after $((size - 1)) bytes, the header says $size
long.ckpt|has 1 extra bytes after its checksum
flip.ckpt|is corrupted (checksum mismatch
text.ckpt|is not a znet checkpoint
CASES
    expect 1 "$ckpt was saved from another model" eval "$model" --set width=4 --data "$data" --weights "$ckpt"
    # a damaged data folder: the run stops, naming the file, and the checkpoint stays as it was
    bad=$tmp/bad
    make_idx "$bad" 40 20
    head -c 1000 "$bad/train-images-idx3-ubyte" > "$tmp/x" && mv "$tmp/x" "$bad/train-images-idx3-ubyte"
    expect 1 "$bad/train-images-idx3-ubyte: truncated: data ends in image 1 of 40 (the header claims 31360" \
        run "$model" "${tiny[@]}" "${once[@]}" --data "$bad" --save "$ckpt"
    { be32 2051; be32 60000; be32 4096; be32 4096; } > "$bad/train-images-idx3-ubyte"
    { be32 2049; be32 60000; } > "$bad/train-labels-idx1-ubyte"
    expect 1 "the header claims 1006632960000 bytes of data, the file holds 0" \
        run "$model" "${tiny[@]}" "${once[@]}" --data "$bad" --save "$ckpt"
    rm "$bad/t10k-labels-idx1-ubyte"
    expect 1 "$bad/t10k-labels-idx1-ubyte.gz: no such file" eval "$model" "${tiny[@]}" --data "$bad" --weights "$ckpt"
    [ "$(cksum < "$ckpt")" = "$sum" ] || fail "a refused data folder changed $ckpt"
fi

if [ "$failed" -ne 0 ]; then
    echo "run_hostile: $failed of $cases cases failed"
    exit 1
fi
echo "run_hostile: $cases cases passed"
