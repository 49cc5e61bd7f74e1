/* tar.h: unpacking a tar archive, gzip'd or plain (zlib's gz* functions read both), for data
 * sets that come as .tar.gz. Only what such an archive needs: ustar (POSIX or GNU) regular files
 * and directories; links, devices, absolute paths and `..` components are refused, so nothing
 * is ever written outside the destination. */
#ifndef ZN_TAR_H
#define ZN_TAR_H

#include <stdbool.h>
#include <stddef.h>

/* Unpacks archive under the existing directory dest. Every file is written to a temporary name
 * beside it and renamed into place once complete. max_bytes > 0 refuses archives whose files
 * add up to more. On failure (bad or truncated archive, unsafe entry, I/O error) err names the
 * archive and entry; files already renamed into place stay, so callers unpack into a staging
 * directory of their own. */
bool zn_tar_extract(const char *archive, const char *dest, long long max_bytes, char *err,
                    size_t errlen);

#endif
