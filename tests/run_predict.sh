#!/usr/bin/env bash
# run_predict.sh: `znet predict` on a checkpoint of fashion_small trained a few steps on a
# generated Fashion-MNIST-format set (make_idx): text and JSON answers for PNG files, a folder and a
# .npy array,
# gray and RGB images of other sizes converted to the model's 28x28, probabilities that sum to 1,
# the same image giving the same answer however it is given, and refusals: a damaged file named
# while the others are answered (exit 1), usage errors (exit 2), another model's checkpoint.
# usage: run_predict.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
model=$src/models/fashion_small.znet
make_idx data 256 64
"$znet" run "$model" --set width=4 --batch 64 --epochs 1 --data data --save w.ckpt --quiet > out 2>&1 ||
    { cat out; bad "training the checkpoint failed"; zt_end predict; }

# PNG files written by python's zlib: a gray 28x28, an RGB 56x40 of the same picture, a damaged one
mkdir -p photos/sub
python3 - <<'PY' || bad "writing the PNG files"
import struct, zlib
def png(path, w, h, channels, pixel):
    rows = b"".join(b"\0" + bytes(v for x in range(w) for v in pixel(x, y)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if channels == 1 else 2, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
png("gray.png", 28, 28, 1, lambda x, y: [(x * 9 + y * 5) % 256])
png("photos/rgb.png", 56, 40, 3, lambda x, y: [(x * 5) % 256, (y * 7) % 256, 128])
png("photos/sub/gray_copy.png", 28, 28, 1, lambda x, y: [(x * 9 + y * 5) % 256])
open("broken.png", "wb").write(open("gray.png", "rb").read()[:60])
def npy(path, shape, data):  # uint8, C order, as numpy writes it
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
    hlen = (10 + len(text) + 1 + 63) // 64 * 64 - 10
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", hlen) + (text.ljust(hlen - 1) + "\n").encode() + data)
gray = bytes((x * 9 + y * 5) % 256 for y in range(28) for x in range(28))
npy("arr.npy", (2, 28, 28, 1), gray + bytes(range(256)) * 3 + bytes(16))
npy("wide.npy", (1, 32, 32), bytes(1024))
PY

"$znet" predict "$model" --set width=4 --data data --weights w.ckpt gray.png photos > out 2>&1 || bad "predict exited $?"
grep -q '^gray.png$' out || bad "predict: no answer for gray.png"
grep -q '^photos/rgb.png$' out || bad "predict: the folder's RGB image not answered"
grep -q '^photos/sub/gray_copy.png$' out || bad "predict: the subfolder's image not answered"
[ "$(grep -c '^  out ' out)" -eq 3 ] || bad "predict: want one line of head 'out' per image"
grep -Eq '^  out +[^ ].* [01]\.[0-9]{3}, .* [01]\.[0-9]{3}, .* [01]\.[0-9]{3}$' out || bad "predict: 3 classes with probabilities"
a=$(sed -n '/^gray.png$/{n;p}' out) b=$(sed -n '/^photos\/sub\/gray_copy.png$/{n;p}' out)
[ -n "$a" ] && [ "$a" = "$b" ] || bad "predict: one picture, two answers: '$a' and '$b'"

# an array file: each image answered as FILE[i], the first one as the PNG of the same pixels
"$znet" predict "$model" --set width=4 --data data --weights w.ckpt arr.npy > out 2>&1 || bad "predict arr.npy exited $?"
grep -q '^arr.npy\[1\]$' out || bad "predict: arr.npy[1] not answered"
c=$(sed -n '/^arr.npy\[0\]$/{n;p}' out)
[ -n "$c" ] && [ "$c" = "$a" ] || bad "predict: arr.npy[0] answered '$c', the same picture as PNG '$a'"
zt_expect 1 "wide.npy: its images are \[1, 32, 32\]; the model takes \[1, 28, 28\]" \
    "$znet" predict "$model" --set width=4 --data data --weights w.ckpt wide.npy

"$znet" predict "$model" --set width=4 --data data --weights w.ckpt --json --top 10 gray.png photos/rgb.png > out 2>&1 ||
    bad "predict --json exited $?"
python3 - <<'PY' || bad "predict --json: its lines"
import json
lines = [json.loads(l) for l in open("out")]
assert [l["file"] for l in lines] == ["gray.png", "photos/rgb.png"], lines
for l in lines:
    top = l["heads"]["out"]
    assert len(top) == 10 and abs(sum(e["p"] for e in top) - 1) < 1e-4, top
    assert all(a["p"] >= b["p"] for a, b in zip(top, top[1:])), top
    assert sorted(e["index"] for e in top) == list(range(10)), top
PY

# a model with three heads: each head's line and the vote
"$znet" run "$src/models/davidnet_zee.znet" --set width=2 --set channels=1 --set train.data='"fashion_mnist"' \
    --batch 64 --epochs 1 --data data --save z.ckpt --quiet > out 2>&1 || bad "training the three-head checkpoint"
"$znet" predict "$src/models/davidnet_zee.znet" --set width=2 --set channels=1 --set train.data='"fashion_mnist"' \
    --data data --weights z.ckpt --json gray.png > out 2>&1 || bad "predict (three heads) exited $?"
python3 - <<'PY' || bad "predict --json, three heads: its line"
import json
l = json.loads(open("out").read())
assert list(l) == ["file", "heads", "vote"] and sorted(l["heads"]) == ["h1", "h2", "h3"], l
assert l["vote"]["heads"] == sum(h[0]["index"] == l["vote"]["index"] for h in l["heads"].values()), l
PY

zt_expect 1 "broken.png: " "$znet" predict "$model" --set width=4 --data data --weights w.ckpt broken.png gray.png
grep -q '^gray.png$' out || bad "predict: a damaged file stopped the others"
grep -q '1 of the inputs could not be answered' out || bad "predict: the closing count"
zt_expect 1 "missing.png: No such file" "$znet" predict "$model" --set width=4 --data data --weights w.ckpt missing.png
zt_expect 1 "saved from another model" "$znet" predict "$model" --set width=8 --data data --weights w.ckpt gray.png
zt_expect 2 "--weights CKPT is required" "$znet" predict "$model" --data data gray.png
zt_expect 2 "no image or folder given" "$znet" predict "$model" --data data --weights w.ckpt
zt_expect 2 "--top needs an integer from 1" "$znet" predict "$model" --data data --weights w.ckpt --top 0 gray.png
zt_end predict
