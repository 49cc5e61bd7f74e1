/* fuzz_util.c: the scratch directory the fuzz targets write their inputs to (see fuzz.h). One
 * per process (under $TMPDIR, else /dev/shm, else /tmp), made on first use and removed with
 * everything in it at exit, so parallel fuzzers and replays never share files. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "fuzz.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[4096];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_scratch(void)
{
    remove_tree(scratch);
}

static void die(const char *what, const char *path)
{
    perror(path);
    fprintf(stderr, "fuzz harness: cannot %s %s\n", what, path);
    abort();
}

static const char *scratch_dir(void)
{
    if (scratch[0]) return scratch;
    /* memory-backed when it can be: on a disk, writing the input costs 100 times the parse */
    struct stat st;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/znet-fuzz-XXXXXX", tmp);
    if (!mkdtemp(scratch)) die("make the scratch directory", scratch);
    atexit(remove_scratch);
    return scratch;
}

/* One path per name, so a target can hold several at once. */
const char *zn_fuzz_path(const char *name)
{
    static struct {
        char name[64];
        char path[4200];
    } slot[8];
    int i = 0;
    while (i < 8 && slot[i].name[0] && strcmp(slot[i].name, name) != 0) i++;
    if (i == 8 || strlen(name) >= sizeof slot[i].name) die("name another scratch file", name);
    if (!slot[i].name[0]) {
        snprintf(slot[i].name, sizeof slot[i].name, "%s", name);
        snprintf(slot[i].path, sizeof slot[i].path, "%s/%s", scratch_dir(), name);
    }
    return slot[i].path;
}

const char *zn_fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    const char *path = zn_fuzz_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) die("write", path);
    return path;
}

const char *zn_fuzz_empty_dir(const char *name)
{
    const char *path = zn_fuzz_path(name);
    remove_tree(path);
    if (mkdir(path, 0700) != 0) die("make", path);
    return path;
}

void zn_fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *alen,
                   const uint8_t **b, size_t *blen)
{
    size_t head = size < 2 ? size : 2;
    size_t want = size < 2 ? 0 : (size_t)data[0] << 8 | data[1];
    size_t rest = size - head;
    *a = data + head;
    *alen = want < rest ? want : rest;
    *b = *a + *alen;
    *blen = rest - *alen;
}
