#!/usr/bin/env bash
# run_data_get.sh: `znet data get` when libcurl cannot be opened. znet opens libcurl only when a
# download starts (data/libcurl.h), so the binary must not link it, and a libcurl.so.4 that is
# not a library, or lacks a call, must give exit 1 with a message naming it, and keep the partial
# download already there. Real downloads (HTTP, resume, retries) are test_fetch.c's.
# usage: run_data_get.sh ZNET SOURCE_DIR
set -u
. "$(dirname "$0")/shell_support.sh"
zt_begin "$0 ZNET SOURCE_DIR" "$@"

ldd "$znet" | grep -q libcurl && bad "znet links libcurl: every command pays for loading it ($(ldd "$znet" | grep libcurl))"

mkdir -p notelf nocalls D
echo junk > notelf/libcurl.so.4
echo "partial download" > D/cifar-10-binary.tar.gz.part
get=("$znet" data get cifar10 --url file:///nowhere/cifar-10-binary.tar.gz --dir D --retries 0)
LD_LIBRARY_PATH=$PWD/notelf zt_expect 1 "downloading needs libcurl: .*notelf/libcurl.so.4: .*\(apt-get install libcurl4\)" "${get[@]}"
if echo "int unrelated;" | cc -shared -x c - -o nocalls/libcurl.so.4 2> /dev/null; then
    LD_LIBRARY_PATH=$PWD/nocalls zt_expect 1 "downloading needs libcurl: libcurl.so.4 has no curl_global_init" "${get[@]}"
else
    echo "skipped: a libcurl.so.4 without curl's calls (no C compiler to make one)"
fi
[ "$(ls D)" = cifar-10-binary.tar.gz.part ] && [ "$(cat D/cifar-10-binary.tar.gz.part)" = "partial download" ] ||
    bad "the refused download changed D: $(ls -R D)"
# and the real libcurl still opens: a missing file:// source is curl's error 37, named
zt_expect 1 "curl error 37 \[Couldn't open file /nowhere/cifar-10-binary.tar.gz\]" "${get[@]}"
zt_end run_data_get
