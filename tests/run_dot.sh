#!/usr/bin/env bash
# run_dot.sh: `znet graph --dot` of every model in models/ (and of the Z-convolution model's
# variants) must be valid Graphviz: `dot -Tsvg` accepts it and yields an <svg>. Exit 77 (skip)
# when Graphviz is not installed. usage: run_dot.sh ZNET SOURCE_DIR
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

if [ "$failed" -ne 0 ]; then
    echo "dot_render: $failed of $n graphs failed" >&2
    exit 1
fi
echo "dot_render: $n graphs rendered"
