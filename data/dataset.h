/* dataset.h: an image classification data set held in memory as uint8 (CHW per image), and the
 * readers that fill one: CIFAR-10 binary (cifar10.c), gzip'd IDX / Fashion-MNIST (idx.c), the
 * generic by-name loader (dataset.c) and where the data lives on disk (data_dir.c).
 * Every reader validates sizes, headers and labels and reports user errors as messages naming
 * the file (and the record) in err; it never aborts. */
#ifndef ZN_DATASET_H
#define ZN_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lang/recipe.h" /* zn_image_fit */

#define ZN_DATASET_MAX_CLASSES 16
#define ZN_DATASET_MAX_CHANNELS 4
#define ZN_CLASS_NAME_MAX 32

#define ZN_CIFAR10_RECORD 3073          /* 1 label byte + 3 * 32 * 32 pixel bytes */
#define ZN_CIFAR10_FILE_RECORDS 10000   /* records in every official batch file */

typedef struct {
    int n, c, h, w;          /* images, channels, rows, columns */
    uint8_t *images;         /* [n][c][h][w], 0-255 (may point into map) */
    uint8_t *labels;         /* [n], each < n_classes */
    int n_classes;
    char class_names[ZN_DATASET_MAX_CLASSES][ZN_CLASS_NAME_MAX];
    /* the data set's usual per-channel normalisation, 0-255 scale [c]; a recipe may override */
    float mean[ZN_DATASET_MAX_CHANNELS], std[ZN_DATASET_MAX_CHANNELS];
    void *map;               /* a file mapping the images live in (npy.c), or NULL */
    size_t map_len;
} zn_dataset;

/* CIFAR-10 from dir: data_batch_1..5.bin (train, 50,000) or test_batch.bin (test, 10,000),
 * each exactly 30,730,000 bytes; class names from batches.meta.txt when it is there. */
bool zn_cifar10_load(const char *dir, bool train, zn_dataset *out, char *err, size_t errlen);
/* CIFAR-10 records from any files holding a whole, non-zero number of 3,073-byte records
 * (small test sets, subsets). Class names are the standard ones. */
bool zn_cifar10_load_files(const char *const *paths, int n_paths, zn_dataset *out, char *err,
                           size_t errlen);

/* An IDX image file (magic 2051, uint8, 3 dims) and its IDX label file (magic 2049), gzip'd or
 * plain; labels must be < 10. pad_to_32 centres each image in a zero 32x32 frame (28x28 gets 2
 * on every side) so the CIFAR-shaped models run on it. c = 1. */
bool zn_idx_load(const char *images_path, const char *labels_path, bool pad_to_32,
                 zn_dataset *out, char *err, size_t errlen);
/* Fashion-MNIST from dir: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. */
bool zn_fashion_mnist_load(const char *dir, bool train, bool pad_to_32, zn_dataset *out,
                           char *err, size_t errlen);

/* An image folder (image_folder.c): root/train or root/test, one subfolder of PNG/JPEG images
 * per class (names sorted; test/ must have train/'s), each image converted to c x h x w by fit. */
bool zn_image_folder_load(const char *root, bool train, int c, int h, int w, zn_image_fit fit,
                          zn_dataset *out, char *err, size_t errlen);

/* NumPy arrays (npy.c, docs/data.md): path is a folder holding {train,test}_{images,labels}.npy
 * or an .npz holding those members. Images uint8 (0-255) or float32 (0-1, scaled to 0-255),
 * [N, H, W, C] or, with nchw, [N, C, H, W] ([N, H, W]: one channel); labels integers [N], each
 * below classes. A plain .npy is memory-mapped. */
bool zn_npy_load(const char *path, bool train, bool nchw, int classes, zn_dataset *out, char *err,
                 size_t errlen);
/* A .npy header (format 1.0-3.0) held at the start of buf[len], parsed strictly; the data
 * (count elements of item bytes from data_offset) must fill the rest of buf exactly. */
#define ZN_NPY_MAX_RANK 8
typedef struct {
    char kind;               /* 'u', 'i' or 'f' */
    int item;                /* bytes per element: 1, 2, 4 or 8 */
    bool big_endian;
    int rank;
    int64_t shape[ZN_NPY_MAX_RANK];
    size_t count;            /* elements */
    size_t data_offset;
} zn_npy_array;
/* One .npy file of images alone (predict's arrays), read as zn_npy_load reads its images; the
 * labels are all 0. */
bool zn_npy_images(const char *path, bool nchw, zn_dataset *out, char *err, size_t errlen);
bool zn_npy_parse_header(const uint8_t *buf, size_t len, zn_npy_array *a, char *err, size_t errlen);

/* By name: "cifar10" or "fashion_mnist" (pad_to_32 only matters for the latter). */
bool zn_dataset_load(const char *name, const char *dir, bool train, bool pad_to_32,
                     zn_dataset *out, char *err, size_t errlen);
void zn_dataset_free(zn_dataset *ds);

/* The directory holding data set `name`, first match wins:
 *   1. flag_dir (--data), when non-empty;  2. $ZNET_DATA, when set and non-empty;
 *   3. the per-user cache $XDG_CACHE_HOME/znet, else ~/.cache/znet;
 *   4. fashion_mnist only: /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
 * Each of 1-3 may be the data set's own folder or a folder above it holding it under its usual
 * name (cifar-10-batches-bin/, fashion-mnist/). --data and $ZNET_DATA are taken as given (a
 * typo must not silently fall through to other data). Returns true when a directory holding
 * the data set was found; otherwise false with out set to the place the user was asked to use,
 * so the loader's message names it. Unknown names and overlong paths also return false. */
/* The per-user data cache: $XDG_CACHE_HOME/znet (absolute only), else $HOME/.cache/znet; false
 * when neither is set. */
bool zn_data_cache_root(char *out, size_t outlen);
/* "a/b" into out (a alone when b is NULL); false when it does not fit in outlen. */
bool zn_data_path_join(char *out, size_t outlen, const char *a, const char *b);
bool zn_data_dir_resolve(const char *flag_dir, const char *name, char *out, size_t outlen);
/* An image folder's root: --data, else the recipe's folder(path), else $ZNET_DATA; false when
 * none is given (or it is too long). */
bool zn_image_folder_root(const char *flag_dir, const char *recipe_path, char *out, size_t outlen);

/* For the readers: allocate out's arrays (zeroed) for n images of c x h x w; and format an
 * error into err, returning false so a reader can `return zn_dataset_fail(...)`. */
bool zn_dataset_alloc(zn_dataset *out, int n, int c, int h, int w, char *err, size_t errlen);
bool zn_dataset_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
