/* cmd_data.c: `znet data get NAME` (download and unpack a data set into the cache) and `znet
 * data where` (where each data set is found, in resolution order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data/checksum.h"
#include "data/dataset.h"
#include "data/fetch.h"

#define FASHION_SYSTEM_DIR "/usr/share/datasets/fashion-mnist"

static const char *const data_names[] = {"cifar10", "fashion_mnist"};
enum { N_DATA = sizeof data_names / sizeof data_names[0] };

/* The data set argument of `data get` / `data where`, or -1 after a message. */
static int data_index(const char *cmd, const char *name)
{
    for (int i = 0; i < N_DATA; i++)
        if (strcmp(name, data_names[i]) == 0) return i;
    fprintf(stderr, "znet %s: unknown data set '%s' (known: cifar10, fashion_mnist)\n", cmd, name);
    const char *near = zn_cli_did_you_mean(name, data_names, N_DATA);
    if (near) fprintf(stderr, "  hint: did you mean '%s'?\n", near);
    return -1;
}

/* After a successful get: say how to point znet at root when it would look elsewhere. */
static void note_resolution(const char *root)
{
    char found[4096], want[4096 + sizeof ZN_CIFAR10_FOLDER];
    bool ok = zn_data_dir_resolve(NULL, "cifar10", found, sizeof found);
    snprintf(want, sizeof want, "%s/%s", root, ZN_CIFAR10_FOLDER);
    if (ok && strcmp(found, want) == 0) return;
    const char *env = getenv("ZNET_DATA");
    printf("note: znet looks for data in %s%s, not here: pass --data %s (or set ZNET_DATA=%s)\n",
           env && env[0] ? "$ZNET_DATA=" : "", env && env[0] ? env : "the per-user cache", root, root);
}

static int explain_fashion_mnist(void)
{
    char found[4096];
    bool ok = zn_data_dir_resolve(NULL, "fashion_mnist", found, sizeof found);
    if (ok) printf("Fashion-MNIST is already in %s\n", found);
    fprintf(ok ? stdout : stderr,
            "%sFashion-MNIST comes from the Debian package dataset-fashion-mnist, which znet does not\n"
            "download itself: `sudo apt-get install dataset-fashion-mnist` puts it in\n"
            "%s. Elsewhere, put the four *-ubyte.gz files from\n"
            "https://github.com/zalandoresearch/fashion-mnist into ~/.cache/znet/fashion-mnist/.\n",
            ok ? "" : "znet data get: Fashion-MNIST is not installed.\n", FASHION_SYSTEM_DIR);
    return ok ? ZN_EXIT_OK : ZN_EXIT_ERROR;
}

/* --md5 or --sha256: absent, or d's value in hex; else a message naming the option. */
static bool digest_ok(const char *opt, zn_digest d, const char *hex)
{
    if (!hex || zn_digest_is_hex(d, hex)) return true;
    fprintf(stderr, "znet data get: %s needs %zu hex digits, got '%s'\n", opt, zn_digest_hex_len(d), hex);
    return false;
}

static int data_get(int argc, char **argv)
{
    const char *url = NULL, *md5 = NULL, *sha256 = NULL, *dir = NULL;
    long retries = 3;
    const zn_opt opts[] = {
        {"--url", ZN_OPT_STRING, "URL", "download from URL instead (a mirror; file:// works too)", &url, 0, 0},
        {"--md5", ZN_OPT_STRING, "HEX", "expect this MD5 instead of the official archive's", &md5, 0, 0},
        {"--sha256", ZN_OPT_STRING, "HEX", "expect this SHA-256 (checked instead of the MD5)", &sha256, 0, 0},
        {"--dir", ZN_OPT_STRING, "DIR", "unpack under DIR instead of the per-user cache", &dir, 0, 0},
        {"--retries", ZN_OPT_INT, "N", "retry a failed download N times (default 3)", &retries, 0, 100},
    };
    zn_cli_common c;
    const char *name;
    int n;
    int rc = zn_cli_parse_args(argc, argv, "data get NAME [options]",
                               "Downloads data set NAME (cifar10) with libcurl, checks its MD5 (or the SHA-256\n"
                               "--sha256 gives) and unpacks it into the per-user cache ($XDG_CACHE_HOME/znet or\n"
                               "~/.cache/znet), where znet finds it. An interrupted download resumes when run\n"
                               "again. fashion_mnist comes from the Debian package dataset-fashion-mnist\n"
                               "instead.",
                               opts, (int)(sizeof opts / sizeof opts[0]), &c, &name, 1, &n);
    if (rc >= 0) return rc;
    if (n == 0) {
        fprintf(stderr, "znet data get: which data set? (cifar10 or fashion_mnist)\n");
        return ZN_EXIT_USAGE;
    }
    int which = data_index(argv[0], name);
    if (which < 0) return ZN_EXIT_USAGE;
    if (which == 1) return explain_fashion_mnist();
    if (dir && !dir[0]) { /* else the cache would be used without a word */
        fprintf(stderr, "znet data get: --dir needs a folder, got ''\n");
        return ZN_EXIT_USAGE;
    }
    if (!digest_ok("--md5", ZN_DIGEST_MD5, md5) || !digest_ok("--sha256", ZN_DIGEST_SHA256, sha256))
        return ZN_EXIT_USAGE;
    zn_fetch_opts fo = {.url = url, .md5 = md5, .sha256 = sha256, .dir = dir, .retries = (int)retries, .log = stderr};
    char err[2048], root[4096];
    if (!zn_fetch_cifar10(&fo, err, sizeof err)) {
        fprintf(stderr, "znet data get: %s\n", err);
        zn_fetch_cifar10_manual(&fo, stderr);
        return ZN_EXIT_ERROR;
    }
    if (zn_fetch_root(&fo, root, sizeof root)) note_resolution(root);
    return ZN_EXIT_OK;
}

static int data_where(int argc, char **argv)
{
    const char *data = NULL;
    const zn_opt opts[] = {
        {"--data", ZN_OPT_STRING, "DIR", "as `znet run --data DIR` would be given", &data, 0, 0},
    };
    zn_cli_common c;
    const char *name;
    int n;
    int rc = zn_cli_parse_args(argc, argv, "data where [NAME] [--data DIR]",
                               "Prints where znet finds each data set (or NAME only), trying in order: --data,\n"
                               "$ZNET_DATA, the per-user cache, then (fashion_mnist) " FASHION_SYSTEM_DIR ".\n"
                               "With NAME, exits 1 when it is not found.",
                               opts, (int)(sizeof opts / sizeof opts[0]), &c, &name, 1, &n);
    if (rc >= 0) return rc;
    int only = n ? data_index(argv[0], name) : -1;
    if (n && only < 0) return ZN_EXIT_USAGE;
    const char *env = getenv("ZNET_DATA");
    zn_fetch_opts cache = {0};
    char root[4096];
    if (!zn_fetch_root(&cache, root, sizeof root)) snprintf(root, sizeof root, "(none: $HOME is not set)");
    printf("looked for in this order, the first that holds it wins:\n"
           "  1. --data DIR     %s\n  2. $ZNET_DATA     %s\n  3. the cache      %s\n"
           "  4. fashion_mnist: %s (Debian package dataset-fashion-mnist)\n"
           "(when 1 or 2 is given, znet looks only there)\n\n",
           data && data[0] ? data : "(not given)", env && env[0] ? env : "(not set)", root, FASHION_SYSTEM_DIR);
    bool all = true;
    for (int i = 0; i < N_DATA; i++) {
        if (n && i != only) continue;
        char dir[4096];
        bool ok = zn_data_dir_resolve(data, data_names[i], dir, sizeof dir);
        all = all && ok;
        if (ok) printf("%-14s %s\n", data_names[i], dir);
        else printf("%-14s not found (expected in %s; see `znet data get %s`)\n", data_names[i], dir, data_names[i]);
    }
    return n && !all ? ZN_EXIT_ERROR : ZN_EXIT_OK;
}

int zn_cmd_data(int argc, char **argv)
{
    static const char *const verbs[] = {"get", "where"};
    static const char usage[] = "usage: znet data get NAME [--url URL] [--md5 HEX] [--dir DIR] [--retries N]\n"
                                "       znet data where [NAME] [--data DIR]\n"
                                "NAME is cifar10 or fashion_mnist; `znet data get --help` says more.\n";
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return ZN_EXIT_OK;
    }
    int verb = -1;
    for (int i = 0; argc >= 2 && i < 2; i++)
        if (strcmp(argv[1], verbs[i]) == 0) verb = i;
    if (verb < 0) {
        if (argc >= 2) fprintf(stderr, "znet data: unknown action '%s'\n", argv[1]);
        const char *near = argc >= 2 ? zn_cli_did_you_mean(argv[1], verbs, 2) : NULL;
        if (near) fprintf(stderr, "  hint: did you mean '%s'?\n", near);
        fputs(usage, stderr);
        return ZN_EXIT_USAGE;
    }
    char name[16];
    snprintf(name, sizeof name, "data %s", verbs[verb]);
    argv[1] = name; /* so messages and help say "znet data get" */
    return verb == 0 ? data_get(argc - 1, argv + 1) : data_where(argc - 1, argv + 1);
}
