/* image_folder.c: the torchvision ImageFolder layout, ROOT/{train,test}/<class>/<image>.png|jpg,
 * class names the subfolders sorted (byte order), decoded once into a zn_dataset of the model's
 * channels and size. The test split must have the train split's classes, so a label means one
 * class in both. Any unreadable image, empty class or missing split is refused by name. */
#include "data/dataset.h"
#include "data/image_decode.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char **names; /* sorted */
    int n;
} name_list;

static void list_free(name_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static int by_bytes(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The entries of dir that are folders (want_dirs) or image files, hidden ones left out, sorted. */
static bool list_dir(const char *dir, bool want_dirs, name_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return zn_dataset_fail(err, errlen, "%s: %s", dir, strerror(errno));
    int cap = 0;
    bool ok = true;
    for (struct dirent *e; ok && (e = readdir(d));) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.') continue;
        if (!zn_data_path_join(path, sizeof path, dir, e->d_name))
            ok = zn_dataset_fail(err, errlen, "%s/%s: path too long", dir, e->d_name);
        else if (stat(path, &st) != 0)
            ok = zn_dataset_fail(err, errlen, "%s: %s", path, strerror(errno));
        else if (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) && zn_image_name(e->d_name)) {
            if (out->n == cap) {
                cap = cap ? 2 * cap : 64;
                char **grown = realloc(out->names, sizeof(char *) * cap);
                if (!grown) ok = zn_dataset_fail(err, errlen, "%s: out of memory listing it", dir);
                else out->names = grown;
            }
            if (ok && !(out->names[out->n++] = strdup(e->d_name)))
                ok = zn_dataset_fail(err, errlen, "%s: out of memory listing it", dir);
        }
    }
    closedir(d);
    if (!ok) {
        list_free(out);
        return false;
    }
    if (out->n) qsort(out->names, out->n, sizeof(char *), by_bytes);
    return true;
}

/* The classes of ROOT/split: its subfolders, at least one, at most ZN_DATASET_MAX_CLASSES. */
static bool list_classes(const char *root, const char *split, name_list *out, char *err, size_t errlen)
{
    char dir[4096];
    struct stat st;
    if (!zn_data_path_join(dir, sizeof dir, root, split)) return zn_dataset_fail(err, errlen, "%s: path too long", root);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return zn_dataset_fail(err, errlen, "%s: no such folder (an image folder holds train/ and test/, each "
                               "with one subfolder of images per class; docs/data.md)", dir);
    if (!list_dir(dir, true, out, err, errlen)) return false;
    const char *why = !out->n ? "has no class subfolders" : out->n > ZN_DATASET_MAX_CLASSES ? "has too many classes" : NULL;
    for (int i = 0; !why && i < out->n; i++)
        if (strlen(out->names[i]) >= ZN_CLASS_NAME_MAX) why = "has a class name too long";
    if (!why) return true;
    zn_dataset_fail(err, errlen, "%s %s (%d subfolders; at most %d classes, names under %d bytes)", dir, why,
                    out->n, ZN_DATASET_MAX_CLASSES, ZN_CLASS_NAME_MAX);
    list_free(out);
    return false;
}

/* Decodes path into image i of ds. */
static bool load_image(const char *path, zn_dataset *ds, int i, zn_image_fit fit, char *err, size_t errlen)
{
    size_t chw = (size_t)ds->c * ds->h * ds->w;
    return zn_image_file_load(path, ds->c, ds->h, ds->w, fit, ds->images + (size_t)i * chw, err, errlen);
}

/* Every class's images of one split: their file lists (files[k] for class k) and total count. */
static bool list_images(const char *root, const char *split, const name_list *classes, name_list *files,
                        int *total, char *err, size_t errlen)
{
    *total = 0;
    for (int k = 0; k < classes->n; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s/%s", root, split, classes->names[k]);
        if (!list_dir(dir, false, &files[k], err, errlen)) return false;
        if (!files[k].n) return zn_dataset_fail(err, errlen, "%s: class folder with no images (.png, .jpg, .jpeg)", dir);
        if (files[k].n > 1 << 24) return zn_dataset_fail(err, errlen, "%s: too many images", dir);
        *total += files[k].n;
    }
    return true;
}

static bool same_classes(const char *root, const name_list *test, char *err, size_t errlen)
{
    name_list train;
    if (!list_classes(root, "train", &train, err, errlen)) return false;
    int i = 0;
    while (i < train.n && i < test->n && strcmp(train.names[i], test->names[i]) == 0) i++;
    bool same = i == train.n && i == test->n;
    if (!same)
        zn_dataset_fail(err, errlen, "%s/test: its class subfolders differ from train/'s (class %d is '%s' in "
                        "test/, '%s' in train/): a label must name one class in both", root, i,
                        i < test->n ? test->names[i] : "(none)", i < train.n ? train.names[i] : "(none)");
    list_free(&train);
    return same;
}

bool zn_image_folder_load(const char *root, bool train, int c, int h, int w, zn_image_fit fit, zn_dataset *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *split = train ? "train" : "test";
    name_list classes, files[ZN_DATASET_MAX_CLASSES] = {0};
    if (!list_classes(root, split, &classes, err, errlen)) return false;
    int n = 0;
    bool ok = (train || same_classes(root, &classes, err, errlen)) &&
              list_images(root, split, &classes, files, &n, err, errlen) &&
              zn_dataset_alloc(out, n, c, h, w, err, errlen);
    for (int k = 0, i = 0; ok && k < classes.n; k++)
        for (int j = 0; ok && j < files[k].n; j++, i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s/%s/%s", root, split, classes.names[k], files[k].names[j]);
            ok = load_image(path, out, i, fit, err, errlen);
            out->labels[i] = (uint8_t)k;
        }
    if (ok) {
        out->n_classes = classes.n;
        for (int k = 0; k < classes.n; k++)
            snprintf(out->class_names[k], ZN_CLASS_NAME_MAX, "%s", classes.names[k]);
        /* neutral, as idx.c: 0-255 to [0, 1]; the recipe's mean and std replace it */
        for (int ch = 0; ch < c; ch++) out->mean[ch] = 0.0f, out->std[ch] = 255.0f;
    } else if (out->images) {
        zn_dataset_free(out);
    }
    for (int k = 0; k < classes.n; k++) list_free(&files[k]);
    list_free(&classes);
    return ok;
}
