#!/usr/bin/env bash
# run_sweep_compare.sh: `znet compare DIR` and `znet plot DIR` of a sweep folder written by hand,
# against statistics computed by hand: runs grouped by configuration, their parameters, mean ±
# sample standard deviation per column, n, unfinished runs counted apart, the differences of every pair with
# their standard error and "not separated" within two of them, models with other heads compared on
# their last heads; a corrupt log, a foreign log, a
# folder without a manifest and a stray file named and skipped (exit 1); bands in the plot.
# usage: run_sweep_compare.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"
MiB=1048576

# run FOLDER CONFIG MODEL SEED HEADS VOTE "EPOCH1_ACC EPOCH2_ACC" TIME PEAK_MIB [unfinished]:
# a run folder with its manifest and a two-epoch log; the accuracies are JSON objects; the
# model's parameters are 1000, davidnet's 412944
run() {
    local dir=S/$1 config=$2 model=$3 seed=$4 heads=$5 vote=$6 accs=$7 time=$8 peak=$9 unfinished=${10:-}
    local params=$([ "$model" = davidnet ] && echo 412944 || echo 1000)
    mkdir -p "$dir"
    printf '{"type":"sweep_run","config":"%s","model":"models/%s.znet","model_name":"%s","fingerprint":"0123456789abcdef","seed":%s,"cpus":["CPU A"]}\n' \
        "$config" "$model" "$model" "$seed" > "$dir/manifest.json"
    set -- $accs
    {
        printf '{"type":"run","model":"%s","params":%s,"batch":512,"epochs":2,"seed":%s,"heads":%s,"vote":%s}\n' \
            "$model" "$params" "$seed" "$heads" "$vote"
        printf '{"type":"epoch","epoch":1,"train_loss":1.5,"test_acc":%s,"time":%s}\n' "$1" $((time / 2))
        [ -n "$unfinished" ] ||
            printf '{"type":"epoch","epoch":2,"train_loss":1.0,"test_acc":%s,"time":%s}\n{"type":"final","train_time":%s,"planned_bytes":%s,"high_water_bytes":%s}\n' \
                "$2" "$time" "$time" $((100 * MiB)) $((peak * MiB))
    } > "$dir/log.jsonl"
}
z=(zee "[\"h1\",\"h3\"]" true)
# zee width=16: last h1 .60 .62 .64, h3 .80 .80 .80, vote .90 .91 .92 (best .95 .91 .92), 100-120 s/epoch
run a0 "zee width=16" "${z[@]::1}" 0 "${z[1]}" true '{"h1":0.5,"h3":0.7,"vote":0.95} {"h1":0.60,"h3":0.80,"vote":0.90}' 200 90
run a1 "zee width=16" zee 1 "${z[1]}" true '{"h1":0.5,"h3":0.7,"vote":0.80} {"h1":0.62,"h3":0.80,"vote":0.91}' 220 91
run a2 "zee width=16" zee 2 "${z[1]}" true '{"h1":0.5,"h3":0.7,"vote":0.80} {"h1":0.64,"h3":0.80,"vote":0.92}' 240 92
# multisoft width=16: h1 .50 x3, vote .88 .89 .93; a fourth run unfinished
run b0 "multisoft width=16" multisoft 0 "${z[1]}" true '{"h1":0.4,"h3":0.7,"vote":0.8} {"h1":0.50,"h3":0.80,"vote":0.88}' 200 90
run b1 "multisoft width=16" multisoft 1 "${z[1]}" true '{"h1":0.4,"h3":0.7,"vote":0.8} {"h1":0.50,"h3":0.80,"vote":0.89}' 200 90
run b2 "multisoft width=16" multisoft 2 "${z[1]}" true '{"h1":0.4,"h3":0.7,"vote":0.8} {"h1":0.50,"h3":0.80,"vote":0.93}' 200 90
run b3 "multisoft width=16" multisoft 3 "${z[1]}" true '{"h1":0.4,"h3":0.7,"vote":0.8}' 200 90 unfinished
# davidnet: one run, one head "out", no vote
run c0 "davidnet width=16 train.epochs=2" davidnet 0 '["out"]' false '{"out":0.8} {"out":0.9054}' 226 80
# the bad entries, each named and skipped
run e0 "zee width=8" zee 0 "${z[1]}" true '{"h1":0.5,"h3":0.7,"vote":0.8} {"h1":0.6,"h3":0.8,"vote":0.9}' 200 90
sed -i '2s/.*/{"type":"epoch","epoch":1,/' S/e0/log.jsonl   # a corrupt line
run f0 "zee width=8" zee 1 "${z[1]}" true '{"h1":0.5,"h3":0.7,"vote":0.8} {"h1":0.6,"h3":0.8,"vote":0.9}' 200 90
sed -i '1s/"model":"zee"/"model":"resnet"/' S/f0/log.jsonl  # another model's log
sed -i 's/"seed":/"label":"davidnet width=16","seed":/' S/c0/manifest.json # its name in the table
mkdir S/g0 && cp S/a0/log.jsonl S/g0/                          # no manifest
echo "notes" > S/notes.txt

"$znet" compare S > table.md 2> err.txt
rc=$?
cat table.md
[ "$rc" = 1 ] || bad "compare of a folder with bad entries: exit $rc, want 1"
for want in "skipped S/e0: S/e0/log.jsonl:2: " "skipped S/f0: S/f0/log.jsonl is a log of resnet seed 1, but the manifest says zee seed 1" \
    "skipped S/g0: S/g0/manifest.json: no such file" "skipped S/notes.txt: not a run folder" "4 entries of S skipped"; do
    grep -qF "$want" err.txt || bad "no message '$want': $(cat err.txt)"
done
want_rows=(
    '| configuration | runs | parameters | h1 | h3 | vote | out | last head | best vote | s/epoch | planned memory | measured peak (arena) |'
    '| zee width=16 | 3 | 1,000 | 0.6200 ± 0.0200 | 0.8000 ± 0.0000 | 0.9100 ± 0.0100 | – | 0.8000 ± 0.0000 | 0.9267 ± 0.0208 | 110.0 ± 10.0 | 100.0 ± 0.0 MiB | 91.0 ± 1.0 MiB |'
    '| multisoft width=16 | 3 (+1 unfinished) | 1,000 | 0.5000 ± 0.0000 | 0.8000 ± 0.0000 | 0.9000 ± 0.0265 | – | 0.8000 ± 0.0000 | 0.9000 ± 0.0265 | 100.0 ± 0.0 | 100.0 ± 0.0 MiB | 90.0 ± 0.0 MiB |'
    '| davidnet width=16 | 1 | 412,944 | – | – | – | 0.9054 | 0.9054 | – | 113.0 | 100.0 MiB | 80.0 MiB |'
    # A - B: h1 +.12, SE sqrt(.02^2/3) = .0115: separated; vote +.01, SE sqrt((.01^2 + .026458^2)/3) = .0163
    '| zee width=16 − multisoft width=16 | +0.1200 (SE 0.0115) | +0.0000 (SE 0.0000) not separated | +0.0100 (SE 0.0163) not separated | – | +0.0000 (SE 0.0000) not separated | +0.0267 (SE 0.0194) not separated |'
    # davidnet has no head in common with the others: only their last heads (h3, out) meet
    '| zee width=16 − davidnet width=16 | – | – | – | – | -0.1054 (no SE) | – |'
    '| multisoft width=16 − davidnet width=16 | – | – | – | – | -0.1054 (no SE) | – |'
)
for row in "${want_rows[@]}"; do
    grep -qxF -- "$row" table.md || bad "the table lacks the row: $row"
done
# runs whose heads all agree need no "last head" column (it would repeat h3)
mkdir T && cp -r S/a0 S/a1 S/b0 T/
"$znet" compare T > same.md 2>&1 || bad "compare of one model's heads: exit $?: $(cat same.md)"
grep -q "^| configuration | runs | parameters | h1 | h3 | vote | best vote |" same.md || bad "same heads: $(head -1 same.md)"

# a configuration of one run against one of three: no standard error
rm -rf S/e0 S/f0 S/g0 S/notes.txt
run d0 "zee width=8" zee 0 "${z[1]}" true '{"h1":0.5,"h3":0.7,"vote":0.8} {"h1":0.6,"h3":0.8,"vote":0.9}' 200 90
"$znet" compare S > table2.md 2> err.txt || bad "compare of a clean folder: exit $?: $(cat err.txt)"
grep -qF '| zee width=16 − zee width=8 | +0.0200 (no SE) | +0.0000 (no SE) | +0.0100 (no SE) | – | +0.0000 (no SE) | +0.0267 (no SE) |' table2.md ||
    bad "one run: want 'no SE': $(grep 'zee width=16 − zee width=8' table2.md)"
grep -q "CPU models" table2.md && bad "a note on CPU models with one CPU"
sed -i 's/"CPU A"/"CPU B"/' S/d0/manifest.json
"$znet" compare S | grep -q "^Note: the runs ran on 2 CPU models (CPU A; CPU B)" || bad "no note on two CPU models"

# the plot: one mean curve per configuration with a band (the finished runs'); usage errors
"$znet" plot S/ > plot.out 2>&1 || bad "plot of a sweep: exit $?: $(cat plot.out)"
[ -s S.svg ] || bad "plot S/ wrote no S.svg: $(cat plot.out)"
[ "$(grep -c 'class="band" data-run="0" data-series="vote"' S.svg)" = 1 ] || bad "no band of zee width=16's vote"
grep -q 'class="band" data-run="2"' S.svg && bad "a band for davidnet's single run (no sd)"
grep -qF 'zee width=16, mean of 3, band ± sd' S.svg || bad "the legend does not name the configuration and n"
# epoch 2 of zee width=16's vote: mean .91, band .90 to .92; its CSV holds the mean
"$znet" plot S --csv > mean.csv || bad "plot --csv of a sweep: exit $?"
grep -q '^"zee width=16, mean of 3, band ± sd",zee,2,.*,0.91,' mean.csv || bad "the mean curve's CSV: $(cat mean.csv)"
zt_expect 2 "S is a folder: a sweep folder is plotted alone" "$znet" plot S a0.jsonl
zt_expect 2 "S is a folder: a sweep folder is compared alone" "$znet" compare S --set width=2
mkdir E
zt_expect 1 "E holds no runs of .znet sweep." "$znet" compare E
zt_end sweep_compare
