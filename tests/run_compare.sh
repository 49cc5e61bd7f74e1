#!/usr/bin/env bash
# run_compare.sh: `znet compare` prints one Markdown row per model with its parameter count and,
# from a run log, the last accuracy of every head, the vote, the best vote, epochs, seconds per
# epoch ("1 of 2" for an unfinished run) and the measured peak; bad input gets a message and exit code 1 or 2.
# usage: run_compare.sh ZNET SOURCE_DIR
set -u
znet=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat > "$tmp/zee.jsonl" <<'LOG'
{"type":"run","model":"davidnet_zee","file":"models/davidnet_zee.znet","params":488720,"batch":512,"epochs":2,"data":"cifar10","seed":0,"heads":["h1","h2","h3"],"vote":true}
{"type":"epoch","epoch":1,"step":97,"lr":0.08,"train_loss":1.5,"train_acc":0.45,"test_acc":{"h1":0.40,"h2":0.50,"h3":0.55,"vote":0.56},"time":100.0,"img_per_s":600.0}
{"type":"epoch","epoch":2,"step":194,"lr":0.16,"train_loss":1.1,"train_acc":0.60,"test_acc":{"h1":0.52,"h2":0.61,"h3":0.66,"vote":0.65},"time":200.0,"img_per_s":610.0}
{"type":"final","time":200.0,"train_time":160.0,"img_per_s":620.0,"planned_bytes":700000000,"high_water_bytes":650000000,"best":{"h1":0.52,"h2":0.61,"h3":0.66,"vote":0.65}}
LOG

out=$("$znet" compare --set width=16 "$src/models/davidnet_multisoft.znet" "$src/models/davidnet_zee.znet" \
      --log "$tmp/zee.jsonl" --name zee16) || fail "compare exited $?"
echo "$out"
[ "$(echo "$out" | grep -c '^|')" -eq 4 ] || fail "expected a header, a rule and two rows"
echo "$out" | grep -q '^| davidnet_multisoft | 487,888 |' || fail "multisoft row or its parameter count"
row=$(echo "$out" | grep '^| zee16 |') || fail "no row labelled zee16"
for want in '488,720' 'h1 0.5200 · h2 0.6100 · h3 0.6600' '| 0.6500 | 0.6500 | 2 | 100.0 | 620 | 619.9 MiB |'; do
    echo "$row" | grep -qF "$want" || fail "zee16 row lacks '$want'"
done

# --opt=VALUE reads as --opt VALUE
eq=$("$znet" compare --set=width=16 --batch=512 "$src/models/davidnet_multisoft.znet" "$src/models/davidnet_zee.znet" \
     --log="$tmp/zee.jsonl" --name=zee16) || fail "compare with --opt=VALUE exited $?"
[ "$eq" = "$("$znet" compare --set width=16 --batch 512 "$src/models/davidnet_multisoft.znet" \
      "$src/models/davidnet_zee.znet" --log "$tmp/zee.jsonl" --name zee16)" ] || fail "--opt=VALUE differs from --opt VALUE"

# a run without its final record, short of its recipe's epochs, shows how far it got
head -2 "$tmp/zee.jsonl" > "$tmp/partial.jsonl"
out=$("$znet" compare --set width=16 "$src/models/davidnet_zee.znet" --log "$tmp/partial.jsonl") ||
    fail "compare of a partial log exited $?"
echo "$out" | grep -qF '| 0.5600 | 0.5600 | 1 of 2 | 100.0 | 600 |' || { echo "$out"; fail "partial run: want '1 of 2' epochs"; }

"$znet" compare --bogus x 2> "$tmp/err"; [ $? -eq 2 ] || fail "unknown option: want exit 2"
grep -q "unknown option '--bogus'" "$tmp/err" || fail "unknown option message"
"$znet" compare "$src/models/davidnet.znet" --log "$tmp/missing.jsonl" > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] || fail "missing log: want exit 1"
grep -q "missing.jsonl" "$tmp/err" || fail "missing log message names the file"
# 64 --set options before the first model and one more after it: a usage error, none left out
sets=()
for i in $(seq 1 64); do sets+=(--set "width=$i"); done
"$znet" compare "${sets[@]}" "$src/models/davidnet.znet" --set width=8 > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] || fail "65 --set options for a model: want exit 2"
grep -q "too many --set options at 'width=8'" "$tmp/err" || fail "too many --set options: message"
echo "compare: 1 passed, 0 failed"
