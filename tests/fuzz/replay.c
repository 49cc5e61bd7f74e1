/* replay.c: the main of a fuzz target in the normal build (no libFuzzer): runs the target on
 * every file named, or in the folders named (not recursing), so the suite replays the seed and
 * regression corpora. Any crash, sanitizer report or assert fails the test. A folder that does not
 * exist is skipped (a target with no regressions yet has none); an empty folder, or nothing
 * replayed at all, is an error, so a moved corpus cannot make the test pass by replaying nothing. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    /* an exact-size buffer, so ASan sees a read past the input's end */
    struct stat st;
    size_t len = fstat(fileno(f), &st) == 0 ? (size_t)st.st_size : 0;
    uint8_t *exact = malloc(len ? len : 1);
    bool ok = exact && fread(exact, 1, len, f) == len;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "%s: %s\n", path, exact ? "cannot read it whole" : "out of memory");
        free(exact);
        return -1;
    }
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 1;
}

/* Files replayed from path (a file or a folder), or -1. */
static int replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("%s: absent, skipped\n", path);
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) return replay_file(path);
    struct dirent **list;
    int n = scandir(path, &list, NULL, alphasort), done = 0;
    for (int i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, list[i]->d_name);
        if (list[i]->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode) && done >= 0)
            done = replay_file(file) < 0 ? -1 : done + 1;
        free(list[i]);
    }
    free(list);
    if (done == 0) fprintf(stderr, "%s: no input files\n", path);
    return done > 0 ? done : -1;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = replay(argv[i]);
        if (n < 0) return 1;
        total += n;
    }
    printf("%s: %d inputs replayed without a crash\n", argv[0], total);
    return total > 0 ? 0 : 1;
}
