/* data_dir.c: where a data set lives on disk: --data (or npy's own path), then $ZNET_DATA, then
 * the per-user cache ($XDG_CACHE_HOME/znet or ~/.cache/znet), then a system location (see
 * dataset.h); and the bounded path join that the downloader uses too. */
#include "data/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *name;       /* as in a recipe's `data =` */
    const char *folder;     /* its usual folder name under a data root */
    const char *markers[4]; /* any one of these files marks a directory holding it */
    const char *system_dir; /* a distribution's install location, or NULL */
} zn_known_data;

static const zn_known_data known_data[] = {
    {"cifar10", "cifar-10-batches-bin", {"data_batch_1.bin", "test_batch.bin"}, NULL},
    {"fashion_mnist", "fashion-mnist",
     {"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte",
      "t10k-images-idx3-ubyte"},
     "/usr/share/datasets/fashion-mnist"},
    {"npy", "npy", {"train_images.npy", "test_images.npy"}, NULL},
};

static bool is_file(const char *dir, const char *file)
{
    char path[4096];
    struct stat st;
    if (!zn_data_path_join(path, sizeof path, dir, file)) return false;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool holds(const zn_known_data *k, const char *dir)
{
    for (int i = 0; i < 4 && k->markers[i]; i++)
        if (is_file(dir, k->markers[i])) return true;
    return false;
}

bool zn_data_path_join(char *out, size_t outlen, const char *a, const char *b)
{
    int n = b ? snprintf(out, outlen, "%s/%s", a, b) : snprintf(out, outlen, "%s", a);
    return n >= 0 && (size_t)n < outlen;
}

/* base itself or base/<folder>, whichever holds the data set. */
static bool try_base(const zn_known_data *k, const char *base, char *out, size_t outlen)
{
    if (holds(k, base)) return zn_data_path_join(out, outlen, base, NULL);
    if (!zn_data_path_join(out, outlen, base, k->folder)) return false;
    return holds(k, out);
}

/* $XDG_CACHE_HOME/znet (only an absolute $XDG_CACHE_HOME counts, as the XDG spec says), else
 * $HOME/.cache/znet; false when neither is set. */
bool zn_data_cache_root(char *out, size_t outlen)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') return zn_data_path_join(out, outlen, xdg, "znet");
    const char *home = getenv("HOME");
    if (home && home[0]) return zn_data_path_join(out, outlen, home, ".cache/znet");
    return false;
}

bool zn_data_dir_resolve(const char *flag_dir, const char *name, char *out, size_t outlen)
{
    if (outlen) out[0] = '\0';
    const zn_known_data *k = NULL;
    for (size_t i = 0; i < sizeof known_data / sizeof known_data[0]; i++)
        if (strcmp(known_data[i].name, name) == 0) k = &known_data[i];
    if (!k || !outlen) return false;

    const char *env = getenv("ZNET_DATA");
    const char *given = flag_dir && flag_dir[0] ? flag_dir : env && env[0] ? env : NULL;
    if (given) {
        if (try_base(k, given, out, outlen)) return true;
        zn_data_path_join(out, outlen, given, NULL); /* the loader's message names what is missing there */
        return strcmp(k->name, "npy") == 0; /* an .npz file, or a folder whose reader names the missing file */
    }

    char cache[4096];
    bool have_cache = zn_data_cache_root(cache, sizeof cache);
    if (have_cache && try_base(k, cache, out, outlen)) return true;
    if (k->system_dir && holds(k, k->system_dir)) return zn_data_path_join(out, outlen, k->system_dir, NULL);
    /* not found: name the folder the loader's message asks the user to fill */
    if (have_cache) zn_data_path_join(out, outlen, cache, k->folder);
    else zn_data_path_join(out, outlen, k->folder, NULL);
    return false;
}

bool zn_image_folder_root(const char *flag_dir, const char *recipe_path, char *out, size_t outlen)
{
    const char *env = getenv("ZNET_DATA");
    const char *root = flag_dir && flag_dir[0] ? flag_dir : recipe_path && recipe_path[0] ? recipe_path
                     : env && env[0] ? env : NULL;
    return root && zn_data_path_join(out, outlen, root, NULL);
}
