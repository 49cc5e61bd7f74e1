/* tar.h: unpacking a tar archive, gzip'd or plain, for data sets that come as .tar.gz, with
 * libarchive. Only regular files and folders are unpacked; links, devices and FIFOs are refused
 * by type, and libarchive's secure-extraction flags refuse absolute paths, `..` components and
 * paths through symbolic links, so nothing is ever written outside the destination. */
#ifndef ZN_TAR_H
#define ZN_TAR_H

#include <stdbool.h>
#include <stddef.h>

/* Unpacks archive under the existing directory dest, files with mode 0644 and folders 0755.
 * max_bytes > 0 refuses archives whose files add up to more. On failure (bad or truncated
 * archive, unsafe entry, I/O error) err names the archive and entry; the entry being written is
 * removed, files already complete stay, so callers unpack into a staging directory of their own.
 * dest is the working directory while it runs (libarchive judges entry paths relative to it), so
 * no other thread may rely on the working directory meanwhile. */
bool zn_tar_extract(const char *archive, const char *dest, long long max_bytes, char *err,
                    size_t errlen);

#endif
