#!/usr/bin/env bash
# run_dot.sh: `znet graph --dot` of every model in models/ (and of the Z-convolution model's
# variants), whole and with its block calls collapsed, must be valid Graphviz: `dot -Tsvg`
# accepts it and yields an <svg>. Then the drawing of davidnet_zee: a cluster per block call,
# --collapse and --depth K, a shape printed once, a bad --depth refused. Exit 77 (skip) when
# Graphviz is not installed. usage: run_dot.sh ZNET SOURCE_DIR
set -u
shopt -s nullglob

if [ $# -ne 2 ]; then
    echo "usage: $0 ZNET SOURCE_DIR" >&2
    exit 2
fi
znet=$1
src=$2
if ! command -v dot > /dev/null; then
    echo "SKIP: Graphviz 'dot' is not installed"
    exit 77
fi
export ZNET_STDLIB="$src/stdlib"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0
n=0
# render FILE [ARGS...]: one graph through dot
render() {
    local file=$1
    shift
    local what="$(basename "$file")${*:+ $*}"
    n=$((n + 1))
    if ! "$znet" graph --dot "$@" "$file" > "$tmp/g.dot" 2> "$tmp/err"; then
        echo "FAIL: znet graph --dot $what:"
        cat "$tmp/err"
        failed=$((failed + 1))
    elif ! dot -Tsvg "$tmp/g.dot" > "$tmp/g.svg" 2> "$tmp/err"; then
        echo "FAIL: dot -Tsvg rejects the graph of $what:"
        head -n 20 "$tmp/err"
        failed=$((failed + 1))
    elif ! grep -q '<svg' "$tmp/g.svg"; then
        echo "FAIL: dot -Tsvg made no <svg> for $what"
        failed=$((failed + 1))
    fi
}

for f in "$src"/models/*.znet; do
    render "$f"
    render "$f" --collapse
    render "$f" --depth 2
done
zee="$src/models/davidnet_zee.znet"
render "$zee" --set 'pool="channel_axis"'
render "$zee" --set roots=true
render "$zee" --set 'filters=[8,16]'
render "$zee" --set width=16
render "$zee" --set 'pool="channel_axis"' --set roots=true --set 'filters=[8,16]' --set width=16
render "$zee" --params
render "$zee" --backward --set width=16
render "$src/models/davidnet.znet" --backward
render "$src/models/davidnet.znet" --backward --collapse

# check WHAT CONDITION: counts a failure unless CONDITION (a command) holds
check() {
    local what=$1
    shift
    n=$((n + 1))
    if ! "$@"; then
        echo "FAIL: $what"
        failed=$((failed + 1))
    fi
}
# count PATTERN FILE: lines of FILE matching PATTERN (grep -c, which says 0 and fails on none)
count() { grep -c -e "$1" "$2" || true; }
graph() { "$znet" graph "$@" "$zee" 2> "$tmp/err"; }

graph > "$tmp/full.dot"
graph --collapse > "$tmp/c.dot"
graph --depth 1 > "$tmp/d1.dot"
graph --depth 2 > "$tmp/d2.dot"
# davidnet_zee's calls after the passes: prep; b1, b2, b3 (layer) each with h.cbr, cbr and cbr#2
# inside; per head z1..z3 (zpool), its zstitch and its ztower with a zlayer inside (the z-tower
# fusion, a memory lever, does not run without a memory budget); h1..h3.zhead: 28
clusters=$(count 'subgraph cluster_' "$tmp/full.dot")
check "davidnet_zee: $clusters clusters, not one per block call (28)" [ "$clusters" -eq 28 ]
for call in 'b1 (layer)' b1.h.cbr b1.cbr 'b1.cbr#2' b3.h.cbr h1.zhead h2.zhead h3.zhead 'z3 (zpool)' z3.zstitch \
    'z3.ztower.y (zlayer)'; do
    check "davidnet_zee: no cluster for the call $call" grep -qF "label=\"$call\";" "$tmp/full.dot"
done
dups=$(grep -o 'label="[^"]*";$' "$tmp/full.dot" | sort | uniq -d)
check "davidnet_zee: calls drawn twice: $dups" [ -z "$dups" ]
check "davidnet_zee: an edge labelled (the shape belongs on its node)" [ "$(count '->.*label' "$tmp/full.dot")" -eq 0 ]
# collapsed: the model's 16 calls as one node each beside 2 inputs, 3 losses and the vote, no cluster;
# b1's result shape once (the nodes that read it show their own)
full=$(count '\[label=' "$tmp/full.dot")
whole=$(count '\[label=' "$tmp/c.dot")
check "davidnet_zee --collapse: $whole nodes, not 22 (of $full)" [ "$whole" -eq 22 ]
check "davidnet_zee --collapse: a cluster left" [ "$(count subgraph "$tmp/c.dot")" -eq 0 ]
check "davidnet_zee --collapse: b1 is not one node showing its result" \
    grep -qF 'label="b1 (layer)\n[N, 128, 16, 16]", shape=box3d' "$tmp/c.dot"
check "davidnet_zee --collapse: b1's shape not printed once" [ "$(count '128, 16, 16' "$tmp/c.dot")" -eq 1 ]
check "davidnet_zee: --collapse differs from --depth 1" cmp -s "$tmp/c.dot" "$tmp/d1.dot"
# depth 2: the model's 16 calls as clusters, b1..b3's three cbr calls and the towers' zlayer one node each
differ() { ! cmp -s "$1" "$2"; }
check "davidnet_zee: --depth 2 draws the same as --depth 1" differ "$tmp/d1.dot" "$tmp/d2.dot"
check "davidnet_zee --depth 2: not 16 clusters" [ "$(count 'subgraph cluster_' "$tmp/d2.dot")" -eq 16 ]
check "davidnet_zee --depth 2: b1.cbr#2 not one node" grep -qF 'label="b1.cbr#2\n[N, 128, 16, 16]", shape=box3d' "$tmp/d2.dot"
check "davidnet_zee --depth 2: b1.cbr#2's conv still drawn" [ "$(count 'b1.cbr.conv2d#2' "$tmp/d2.dot")" -eq 0 ]
for bad in 0 -1 65 x 1.5 ''; do
    graph --depth "$bad" > /dev/null
    rc=$?
    check "--depth '$bad' exited $rc, not 2" [ "$rc" -eq 2 ]
    check "--depth '$bad': the message does not name --depth: $(cat "$tmp/err")" grep -q -- '--depth' "$tmp/err"
done
graph --collapse --depth 2 > /dev/null
check "--collapse with --depth 2: not a usage error" [ $? -eq 2 ]

if [ "$failed" -ne 0 ]; then
    echo "dot_render: $failed of $n graphs failed" >&2
    exit 1
fi
echo "dot_render: $n graphs and checks passed"
