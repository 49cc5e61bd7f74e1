# shell_support.sh: sourced by the shell tests that run znet in a scratch folder.
# zt_begin USAGE "$@": checks for the ZNET SOURCE_DIR arguments (exit 2 with USAGE), makes $znet and
# $src absolute, serves the stdlib from $src, moves into a temporary folder $tmp removed at exit,
# and starts the failure count that bad MESSAGE adds to; zt_end NAME reports it (exit 1 if any).
# zt_expect CODE PATTERN COMMAND...: COMMAND exits CODE and says PATTERN (grep -E) on stdout or
# stderr, both left in the file out.
# wait_for FILE TEXT waits (up to 60 s) until FILE exists and holds TEXT (or just exists, for "");
# false if it never does.
# make_idx DIR TRAIN TEST writes a data set in Fashion-MNIST's IDX format (unpacked) into DIR:
# TRAIN training and TEST test images of 28x28 pseudo-random bytes (a fixed LCG, the same on every
# machine), labels i*7 mod 10. Tiny runs on it need neither the Debian package nor a download.
zt_begin() {
    local usage=$1
    shift
    if [ $# -lt 2 ]; then
        echo "usage: $usage" >&2
        exit 2
    fi
    znet=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    src=$(cd "$2" && pwd)
    export ZNET_STDLIB="$src/stdlib"
    tmp=$(mktemp -d)
    trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
    cd "$tmp" || exit 1
    failed=0
}

bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

zt_end() {
    if [ "$failed" -gt 0 ]; then
        echo "$1: $failed failure(s)"
        exit 1
    fi
    echo "$1: all passed"
}

zt_expect() {
    local code=$1 want=$2 rc
    shift 2
    "$@" > out 2>&1
    rc=$?
    [ $rc -eq "$code" ] || bad "${*:2}: exit $rc, want $code: $(cat out)"
    grep -Eq -- "$want" out || bad "${*:2}: no message '$want': $(cat out)"
}

wait_for() {
    for ((w = 0; w < 6000; w++)); do
        [ -e "$1" ] && { [ -z "$2" ] || grep -q "$2" "$1"; } && return 0
        sleep 0.01
    done
    return 1
}

make_idx() {
    mkdir -p "$1"
    local part name n
    for part in "train:$2" "t10k:$3"; do
        name=${part%%:*} n=${part##*:}
        LC_ALL=C awk -v n="$n" 'BEGIN { printf "%c%c%c%c%c%c%c%c", 0, 0, 8, 3, 0, 0, int(n / 256), n % 256
            printf "%c%c%c%c%c%c%c%c", 0, 0, 0, 28, 0, 0, 0, 28
            s = 7; for (i = 0; i < n * 784; i++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%c", int(s / 65536) % 256 } }' \
            > "$1/$name-images-idx3-ubyte"
        LC_ALL=C awk -v n="$n" 'BEGIN { printf "%c%c%c%c%c%c%c%c", 0, 0, 8, 1, 0, 0, int(n / 256), n % 256
            for (i = 0; i < n; i++) printf "%c", (i * 7) % 10 }' > "$1/$name-labels-idx1-ubyte"
    done
}
