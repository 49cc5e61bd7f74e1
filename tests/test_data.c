/* test_data.c: the data layer: the RNG against known values, the CIFAR-10 and IDX readers on
 * small generated files (valid and broken, each message checked for the file and record), the
 * real data sets when present, augmentation against naive references, and the batcher's
 * coverage and determinism. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "data/augment.h"
#include "data/batcher.h"
#include "data/dataset.h"
#include "lang/recipe.h"
#include "data/rng.h"

static char err[1024];

/* <tmpdir>/name in a caller's buffer (several paths live at once in these tests). */
static char *tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", zt_tmpdir(), name);
    return buf;
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0) assert_true(access(path, F_OK) == 0);
}

static void write_bytes(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *path, const uint8_t *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

static void assert_has(const char *text, const char *part)
{
    if (!strstr(text, part)) fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

/* ---- RNG ---- */

static void test_rng_known_values(void **state)
{
    (void)state;
    zn_rng r;
    zn_rng_init(&r, 0);
    assert_true(r.s[0] == 0xE220A8397B1DCDAFull); /* splitmix64's first output for seed 0 */
    r = (zn_rng){{1, 2, 3, 4}};
    assert_true(zn_rng_u64(&r) == 11520); /* xoshiro256**: rotl(2 * 5, 7) * 9 */
}

static void test_rng_save_restore(void **state)
{
    (void)state;
    zn_rng r, saved;
    zn_rng_init(&r, 42);
    zn_rng_u32(&r);
    saved = r;
    uint32_t a[8], b[8];
    for (int i = 0; i < 8; i++) a[i] = zn_rng_u32(&r);
    r = saved;
    for (int i = 0; i < 8; i++) b[i] = zn_rng_u32(&r);
    assert_memory_equal(a, b, sizeof a);
    zn_rng other;
    zn_rng_init(&other, 43);
    assert_true(zn_rng_u64(&other) != (zn_rng_init(&r, 42), zn_rng_u64(&r)));
    assert_true(zn_rng_derive(42, 0) != zn_rng_derive(42, 1));
    assert_true(zn_rng_derive(42, 1) != zn_rng_derive(43, 1));
}

static void test_rng_distributions(void **state)
{
    (void)state;
    zn_rng r;
    zn_rng_init(&r, 7);
    enum { N = 70000, K = 7 };
    int hist[K] = {0};
    for (int i = 0; i < N; i++) {
        uint32_t v = zn_rng_below(&r, K);
        assert_true(v < K);
        hist[v]++;
    }
    for (int k = 0; k < K; k++) assert_in_range(hist[k], N / K - 500, N / K + 500);
    assert_int_equal(zn_rng_below(&r, 1), 0);
    /* n = 3 * 2^30: a multiply-shift without rejection would give r % 3 == 0 half the time */
    int mod3[3] = {0};
    for (int i = 0; i < 30000; i++) mod3[zn_rng_below(&r, 3u << 30) % 3]++;
    for (int k = 0; k < 3; k++) assert_in_range(mod3[k], 9400, 10600);
    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        float u = zn_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        float z = zn_rng_normal(&r);
        sum += z;
        sq += (double)z * z;
    }
    assert_true(sum / N > -0.02 && sum / N < 0.02);
    assert_true(sq / N > 0.97 && sq / N < 1.03);
}

/* ---- CIFAR-10 ---- */

static uint8_t cifar_pixel(int record, int j)
{
    return (uint8_t)(record * 7 + j * 3);
}

/* n records; record i has label i % 10 (bad_label at record bad_record) and known pixels. */
static void write_cifar(const char *path, int n, int bad_record, int bad_label, size_t cut)
{
    size_t size = (size_t)n * ZN_CIFAR10_RECORD;
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    for (int i = 0; i < n; i++) {
        uint8_t *rec = buf + (size_t)i * ZN_CIFAR10_RECORD;
        rec[0] = (uint8_t)(i == bad_record ? bad_label : i % 10);
        for (int j = 0; j < ZN_CIFAR10_RECORD - 1; j++) rec[1 + j] = cifar_pixel(i, j);
    }
    write_bytes(path, buf, size - cut);
    free(buf);
}

static void test_cifar_files_valid(void **state)
{
    (void)state;
    char p1[512], p2[512];
    write_cifar(tmp_path(p1, sizeof p1, "small_a.bin"), 3, -1, 0, 0);
    write_cifar(tmp_path(p2, sizeof p2, "small_b.bin"), 2, -1, 0, 0);
    const char *paths[] = {p1, p2};
    zn_dataset ds;
    assert_true(zn_cifar10_load_files(paths, 2, &ds, err, sizeof err));
    assert_int_equal(ds.n, 5);
    assert_int_equal(ds.c, 3);
    assert_int_equal(ds.h, 32);
    assert_int_equal(ds.w, 32);
    assert_int_equal(ds.n_classes, 10);
    assert_string_equal(ds.class_names[9], "truck");
    const int labels[] = {0, 1, 2, 0, 1};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ds.labels[i], labels[i]);
        int rec = i < 3 ? i : i - 3;
        const uint8_t *img = ds.images + (size_t)i * 3072;
        /* red (0,0), green (0,0), blue (31,31) */
        assert_int_equal(img[0], cifar_pixel(rec, 0));
        assert_int_equal(img[1024], cifar_pixel(rec, 1024));
        assert_int_equal(img[3071], cifar_pixel(rec, 3071));
    }
    assert_true(ds.mean[0] > 125.3f && ds.mean[0] < 125.32f);
    zn_dataset_free(&ds);
}

static void test_cifar_files_errors(void **state)
{
    (void)state;
    char path[512];
    const char *paths[] = {path};
    zn_dataset ds;

    write_cifar(tmp_path(path, sizeof path, "partial.bin"), 3, -1, 0, 5);
    assert_false(zn_cifar10_load_files(paths, 1, &ds, err, sizeof err));
    assert_has(err, "partial.bin: 9214 bytes is not a whole, non-zero number of 3073-byte records");

    write_cifar(tmp_path(path, sizeof path, "badlabel.bin"), 4, 2, 17, 0);
    assert_false(zn_cifar10_load_files(paths, 1, &ds, err, sizeof err));
    assert_has(err, "badlabel.bin: record 2: label 17 is not in 0..9");
    assert_null(ds.images);

    write_bytes(tmp_path(path, sizeof path, "empty.bin"), (const uint8_t *)"", 0);
    assert_false(zn_cifar10_load_files(paths, 1, &ds, err, sizeof err));
    assert_has(err, "empty.bin: 0 bytes");

    tmp_path(path, sizeof path, "absent.bin");
    assert_false(zn_cifar10_load_files(paths, 1, &ds, err, sizeof err));
    assert_has(err, "absent.bin: No such file");
}

/* A full-size (official) test_batch.bin in its own directory. */
static const char *official_dir(void)
{
    static char dir[512];
    make_dir(tmp_path(dir, sizeof dir, "cifar_official"));
    return dir;
}

static void test_cifar_official_size(void **state)
{
    (void)state;
    char path[600];
    const char *dir = official_dir();
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    zn_dataset ds;

    assert_false(zn_cifar10_load(dir, true, &ds, err, sizeof err));
    assert_has(err, "data_batch_1.bin: no such file");
    assert_has(err, "cifar-10-binary.tar.gz");

    write_cifar(path, ZN_CIFAR10_FILE_RECORDS, 1234, 17, 0);
    assert_false(zn_cifar10_load(dir, false, &ds, err, sizeof err));
    assert_has(err, "test_batch.bin: record 1234: label 17 is not in 0..9");

    write_cifar(path, ZN_CIFAR10_FILE_RECORDS, -1, 0, 1000);
    assert_false(zn_cifar10_load(dir, false, &ds, err, sizeof err));
    assert_has(err, "test_batch.bin: 30729000 bytes, expected 30730000 (10000 records of 3073 "
                    "bytes)");

    write_cifar(path, 3, -1, 0, 0); /* a whole number of records, but not the official count */
    assert_false(zn_cifar10_load(dir, false, &ds, err, sizeof err));
    assert_has(err, "test_batch.bin: 9219 bytes, expected 30730000");

    write_cifar(path, ZN_CIFAR10_FILE_RECORDS, -1, 0, 0);
    assert_true(zn_cifar10_load(dir, false, &ds, err, sizeof err));
    assert_int_equal(ds.n, 10000);
    assert_int_equal(ds.labels[9999], 9);
    assert_int_equal(ds.images[(size_t)9999 * 3072 + 5], cifar_pixel(9999, 5));
    assert_string_equal(ds.class_names[0], "airplane");
    zn_dataset_free(&ds);

    char meta[600];
    snprintf(meta, sizeof meta, "%s/batches.meta.txt", dir);
    FILE *f = fopen(meta, "w");
    assert_non_null(f);
    fputs("c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nnine\n\n", f);
    fclose(f);
    assert_true(zn_cifar10_load(dir, false, &ds, err, sizeof err));
    assert_string_equal(ds.class_names[9], "nine");
    zn_dataset_free(&ds);

    f = fopen(meta, "w");
    fputs("c0\nc1\n", f);
    fclose(f);
    assert_false(zn_cifar10_load(dir, false, &ds, err, sizeof err));
    assert_has(err, "batches.meta.txt: 2 class names, expected 10");
    unlink(meta);
    assert_int_equal(mkdir(meta, 0755), 0); /* a folder of that name: the read error, not "0 names" */
    assert_false(zn_cifar10_load(dir, false, &ds, err, sizeof err));
    assert_has(err, "batches.meta.txt: read: Is a directory");
    rmdir(meta);
    unlink(path);
}

/* ---- IDX ---- */

enum { IDX_N = 5, IDX_SIDE = 28 };

static uint8_t idx_pixel(int image, int y, int x)
{
    return (uint8_t)(1 + (image * 31 + y * 5 + x) % 250); /* never 0: padding stays visible */
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

typedef struct {
    uint32_t image_magic, label_magic, images, labels; /* header fields */
    int image_bytes_cut;  /* bytes missing from the end of the image data */
    int bad_record, bad_label;
    int trailing;         /* extra bytes after the labels */
    bool gz;
} idx_spec;

static idx_spec idx_default(void)
{
    return (idx_spec){2051, 2049, IDX_N, IDX_N, 0, -1, 0, 0, true};
}

/* Writes <tmp>/<stem>-images and -labels (".gz" when gz) from spec; paths into img and lab. */
static void write_idx(const char *stem, idx_spec s, char *img, char *lab, size_t len)
{
    size_t px = (size_t)IDX_SIDE * IDX_SIDE;
    size_t isize = 16 + IDX_N * px - (size_t)s.image_bytes_cut;
    uint8_t *ib = malloc(16 + IDX_N * px), lb[8 + IDX_N + 4];
    assert_non_null(ib);
    put_be32(ib, s.image_magic);
    put_be32(ib + 4, s.images);
    put_be32(ib + 8, IDX_SIDE);
    put_be32(ib + 12, IDX_SIDE);
    for (int i = 0; i < IDX_N; i++)
        for (int y = 0; y < IDX_SIDE; y++)
            for (int x = 0; x < IDX_SIDE; x++)
                ib[16 + i * px + (size_t)y * IDX_SIDE + x] = idx_pixel(i, y, x);
    put_be32(lb, s.label_magic);
    put_be32(lb + 4, s.labels);
    for (int i = 0; i < IDX_N + s.trailing; i++)
        lb[8 + i] = (uint8_t)(i == s.bad_record ? s.bad_label : (i * 3) % 10);
    char name[128];
    snprintf(name, sizeof name, "%s-images%s", stem, s.gz ? ".gz" : "");
    tmp_path(img, len, name);
    snprintf(name, sizeof name, "%s-labels%s", stem, s.gz ? ".gz" : "");
    tmp_path(lab, len, name);
    void (*put)(const char *, const uint8_t *, size_t) = s.gz ? write_gz : write_bytes;
    put(img, ib, isize);
    put(lab, lb, 8 + IDX_N + (size_t)s.trailing);
    free(ib);
}

static void test_idx_valid(void **state)
{
    (void)state;
    char img[512], lab[512];
    zn_dataset ds;
    for (int gz = 0; gz < 2; gz++) {
        idx_spec s = idx_default();
        s.gz = gz;
        write_idx("valid", s, img, lab, sizeof img);
        assert_true(zn_idx_load(img, lab, false, &ds, err, sizeof err));
        assert_int_equal(ds.n, IDX_N);
        assert_int_equal(ds.c, 1);
        assert_int_equal(ds.h, 28);
        assert_int_equal(ds.w, 28);
        for (int i = 0; i < IDX_N; i++) {
            assert_int_equal(ds.labels[i], (i * 3) % 10);
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                    assert_int_equal(ds.images[(size_t)i * 784 + y * 28 + x], idx_pixel(i, y, x));
        }
        zn_dataset_free(&ds);
    }
    assert_true(zn_idx_load(img, lab, true, &ds, err, sizeof err));
    assert_int_equal(ds.h, 32);
    assert_int_equal(ds.w, 32);
    for (int i = 0; i < IDX_N; i++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
                int want = inside ? idx_pixel(i, y - 2, x - 2) : 0;
                assert_int_equal(ds.images[(size_t)i * 1024 + y * 32 + x], want);
            }
    zn_dataset_free(&ds);
}

static void expect_idx_error(const char *stem, idx_spec s, bool image_file, const char *message)
{
    char img[512], lab[512];
    zn_dataset ds;
    write_idx(stem, s, img, lab, sizeof img);
    assert_false(zn_idx_load(img, lab, false, &ds, err, sizeof err));
    assert_null(ds.images);
    assert_has(err, image_file ? img : lab);
    assert_has(err, message);
}

static void test_idx_errors(void **state)
{
    (void)state;
    idx_spec s = idx_default();
    s.image_magic = 2049;
    expect_idx_error("magic", s, true, "magic number 2049, expected 2051");
    s = idx_default();
    s.label_magic = 2051;
    expect_idx_error("lmagic", s, false, "magic number 2051, expected 2049");
    s = idx_default();
    s.labels = IDX_N - 1;
    expect_idx_error("count", s, false, "holds 5 images but");
    s = idx_default();
    s.image_bytes_cut = 784 + 300; /* image 3 is short, image 4 missing */
    expect_idx_error("trunc", s, true, "truncated: data ends in image 3 of 5");
    s = idx_default();
    s.bad_record = 2;
    s.bad_label = 12;
    expect_idx_error("label", s, false, "record 2: label 12 is not in 0..9");
    s = idx_default();
    s.trailing = 3;
    expect_idx_error("trailing", s, false, "trailing bytes after 5 labels");
    s = idx_default();
    s.images = s.labels = 0;
    expect_idx_error("zero", s, true, "image count 0");

    char img[512], lab[512];
    zn_dataset ds;
    write_idx("short", idx_default(), img, lab, sizeof img);
    write_gz(img, (const uint8_t *)"\0\0\x08", 3);
    assert_false(zn_idx_load(img, lab, false, &ds, err, sizeof err));
    assert_has(err, img);
    assert_has(err, "too short for the 16-byte IDX header");
}

/* Damages a valid .gz image file: its compressed bytes (zlib must report it, with the path), or
 * bytes appended after the gzip stream, which zlib alone would ignore. */
static void test_idx_gzip_corrupt(void **state)
{
    (void)state;
    char img[512], lab[512];
    zn_dataset ds;
    write_idx("gzjunk", idx_default(), img, lab, sizeof img);
    FILE *j = fopen(img, "ab");
    assert_non_null(j);
    fputs("JUNK", j);
    fclose(j);
    assert_false(zn_idx_load(img, lab, false, &ds, err, sizeof err));
    assert_has(err, img);
    assert_has(err, "bytes after the end of the gzip data");
    assert_null(ds.images);
    for (int damage = 0; damage < 2; damage++) {
        write_idx(damage ? "gzcut" : "gzflip", idx_default(), img, lab, sizeof img);
        FILE *f = fopen(img, "rb");
        assert_non_null(f);
        uint8_t buf[8192];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        assert_true(n > 40 && n < sizeof buf);
        if (damage) {
            n /= 2; /* the compressed stream stops halfway */
        } else {
            for (size_t k = 20; k < n - 12; k += 7) buf[k] ^= 0x5a;
        }
        write_bytes(img, buf, n);
        assert_false(zn_idx_load(img, lab, false, &ds, err, sizeof err));
        assert_has(err, img);
        assert_has(err, "gzip data corrupt or cut short");
        assert_null(ds.images);
    }
}

static void test_fashion_missing(void **state)
{
    (void)state;
    char dir[512];
    make_dir(tmp_path(dir, sizeof dir, "no_fashion"));
    zn_dataset ds;
    assert_false(zn_fashion_mnist_load(dir, true, true, &ds, err, sizeof err));
    assert_has(err, "no_fashion/train-images-idx3-ubyte.gz: no such file");
    assert_has(err, "dataset-fashion-mnist");
    assert_false(zn_dataset_load("mnist3", dir, true, false, &ds, err, sizeof err));
    assert_has(err, "unknown data set 'mnist3' (known: cifar10, fashion_mnist)");
}

static void test_data_dir_resolve(void **state)
{
    (void)state;
    char root[512], sub[700], marker[800], out[1024];
    make_dir(tmp_path(root, sizeof root, "root"));
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", root);
    make_dir(sub);
    snprintf(marker, sizeof marker, "%s/test_batch.bin", sub);
    write_bytes(marker, (const uint8_t *)"x", 1);
    unsetenv("ZNET_DATA");

    assert_true(zn_data_dir_resolve(root, "cifar10", out, sizeof out)); /* the folder above */
    assert_string_equal(out, sub);
    assert_true(zn_data_dir_resolve(sub, "cifar10", out, sizeof out)); /* the folder itself */
    assert_string_equal(out, sub);
    /* --data is taken as given: no falling through to other places */
    assert_false(zn_data_dir_resolve("/nonexistent/x", "cifar10", out, sizeof out));
    assert_string_equal(out, "/nonexistent/x");
    setenv("ZNET_DATA", root, 1);
    assert_true(zn_data_dir_resolve(NULL, "cifar10", out, sizeof out));
    assert_string_equal(out, sub);
    assert_true(zn_data_dir_resolve("", "cifar10", out, sizeof out));
    unsetenv("ZNET_DATA");

    /* the per-user cache: $XDG_CACHE_HOME/znet/cifar-10-batches-bin */
    char cache[512], znet[600];
    make_dir(tmp_path(cache, sizeof cache, "cache"));
    snprintf(znet, sizeof znet, "%s/znet", cache);
    make_dir(znet);
    setenv("XDG_CACHE_HOME", cache, 1);
    assert_false(zn_data_dir_resolve(NULL, "cifar10", out, sizeof out));
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", znet);
    assert_string_equal(out, sub); /* where the user is asked to put it */
    char moved[700]; /* the data moves from root into the cache */
    snprintf(moved, sizeof moved, "%s/cifar-10-batches-bin", root);
    assert_int_equal(rename(moved, sub), 0);
    assert_true(zn_data_dir_resolve(NULL, "cifar10", out, sizeof out));
    assert_string_equal(out, sub);
    unsetenv("XDG_CACHE_HOME");

    assert_false(zn_data_dir_resolve(NULL, "imagenet", out, sizeof out));
    assert_string_equal(out, "");
}

/* ---- real data (skipped when absent) ---- */

static void check_histogram(const zn_dataset *ds, int per_class)
{
    int hist[ZN_DATASET_MAX_CLASSES] = {0};
    for (int i = 0; i < ds->n; i++) hist[ds->labels[i]]++;
    for (int k = 0; k < ds->n_classes; k++) assert_int_equal(hist[k], per_class);
}

static void test_real_cifar10(void **state)
{
    (void)state;
    const char *dir = zt_cifar_dir();
    if (!dir) {
        print_message("skipped: no CIFAR-10 (set ZNET_TEST_CIFAR or put it in ../shared/data)\n");
        skip();
    }
    zn_dataset ds;
    if (!zn_cifar10_load(dir, false, &ds, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(ds.n, 10000);
    const int first[] = {3, 8, 8, 0, 6}; /* cat, ship, ship, airplane, frog */
    for (int i = 0; i < 5; i++) assert_int_equal(ds.labels[i], first[i]);
    assert_int_equal(ds.images[0], 158); /* red (0,0) of the first test image */
    assert_string_equal(ds.class_names[3], "cat");
    check_histogram(&ds, 1000);
    zn_dataset_free(&ds);
    if (!zn_cifar10_load(dir, true, &ds, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(ds.n, 50000);
    assert_int_equal(ds.labels[0], 6);
    check_histogram(&ds, 5000);
    zn_dataset_free(&ds);
}

static void test_real_fashion_mnist(void **state)
{
    (void)state;
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, F_OK) != 0) {
        print_message("skipped: no %s (Debian package dataset-fashion-mnist)\n", dir);
        skip();
    }
    zn_dataset ds;
    if (!zn_dataset_load("fashion_mnist", dir, true, false, &ds, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(ds.n, 60000);
    assert_int_equal(ds.h, 28);
    assert_int_equal(ds.labels[0], 9);
    assert_string_equal(ds.class_names[9], "Ankle boot");
    long sum = 0;
    for (int k = 0; k < 784; k++) sum += ds.images[k];
    assert_int_equal(sum, 76247);
    check_histogram(&ds, 6000);
    zn_dataset_free(&ds);
    if (!zn_dataset_load("fashion_mnist", dir, false, true, &ds, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(ds.n, 10000);
    assert_int_equal(ds.h, 32);
    sum = 0;
    for (int k = 0; k < 1024; k++) sum += ds.images[k];
    assert_int_equal(sum, 33456); /* padding adds only zeros */
    check_histogram(&ds, 1000);
    zn_dataset_free(&ds);
}

/* ---- augmentation ---- */

/* n images c x h x w; pixel value 1 + (ch*h*w + y*w + x) % 255 (distinct when c*h*w <= 255),
 * label i % 10. */
static void make_dataset(zn_dataset *ds, int n, int c, int h, int w)
{
    assert_true(zn_dataset_alloc(ds, n, c, h, w, err, sizeof err));
    int chw = c * h * w;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < chw; k++) ds->images[(size_t)i * chw + k] = (uint8_t)(1 + k % 255);
        ds->labels[i] = (uint8_t)(i % 10);
    }
    ds->n_classes = 10;
    for (int ch = 0; ch < c; ch++) {
        ds->mean[ch] = 0.0f;
        ds->std[ch] = 1.0f;
    }
}

/* n CIFAR-shaped images [3, 32, 32] of pseudo-random bytes drawn with seed. */
static void make_random_dataset(zn_dataset *ds, int n, uint64_t seed)
{
    make_dataset(ds, n, 3, 32, 32);
    zn_rng r;
    zn_rng_init(&r, seed);
    for (size_t k = 0; k < (size_t)ds->n * ds->c * ds->h * ds->w; k++)
        ds->images[k] = (uint8_t)zn_rng_u32(&r);
}

static void test_normalize_known(void **state)
{
    (void)state;
    const uint8_t px[6] = {0, 255, 125, 128, 255, 0}; /* 3 channels of 2 pixels */
    const float mean[3] = {125.31f, 122.95f, 113.87f}, std[3] = {62.99f, 62.09f, 66.70f};
    float inv[3], out[6];
    for (int ch = 0; ch < 3; ch++) inv[ch] = 1.0f / std[ch];
    zn_aug_normalize(px, 3, 2, mean, inv, out);
    const double want[6] = {-125.31 / 62.99, 129.69 / 62.99, 2.05 / 62.09, 5.05 / 62.09,
                            141.13 / 66.70, -113.87 / 66.70};
    for (int k = 0; k < 6; k++) assert_float_equal(out[k], want[k], 1e-5);
}

static void test_flip(void **state)
{
    (void)state;
    enum { C = 2, H = 3 };
    for (int w = 4; w <= 5; w++) { /* even and odd widths */
        float img[C * H * 5], orig[C * H * 5];
        for (int k = 0; k < C * H * w; k++) orig[k] = img[k] = (float)k;
        zn_aug_flip(img, C, H, w);
        for (int row = 0; row < C * H; row++)
            for (int x = 0; x < w; x++) assert_true(img[row * w + x] == orig[row * w + w - 1 - x]);
        zn_aug_flip(img, C, H, w);
        assert_memory_equal(img, orig, (size_t)C * H * w * sizeof *img);
    }
}

/* The recipe's ops over n images of ds with seed; out has n*c*h*w floats. */
static void augment(const zn_dataset *ds, const zn_augment *ops, int n_ops, uint64_t seed,
                    float *out, int n)
{
    zn_augmenter a;
    if (!zn_augmenter_init(&a, ds->c, ds->h, ds->w, ds->mean, ds->std, ops, n_ops, err,
                           sizeof err))
        fail_msg("%s", err);
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i % ds->n;
    zn_rng r;
    zn_rng_init(&r, seed);
    zn_augmenter_apply(&a, ds, idx, n, &r, out);
    free(idx);
    zn_augmenter_free(&a);
}

static void test_augment_seeded(void **state)
{
    (void)state;
    zn_dataset ds;
    make_random_dataset(&ds, 16, 1);
    zn_recipe r;
    zn_recipe_default(&r);
    size_t floats = (size_t)16 * 3 * 32 * 32;
    float *a = malloc(floats * 4), *b = malloc(floats * 4), *c = malloc(floats * 4);
    augment(&ds, r.augment, r.n_augment, 5, a, 16);
    augment(&ds, r.augment, r.n_augment, 5, b, 16);
    augment(&ds, r.augment, r.n_augment, 6, c, 16);
    assert_memory_equal(a, b, floats * 4);
    assert_memory_not_equal(a, c, floats * 4);
    free(a);
    free(b);
    free(c);
    zn_dataset_free(&ds);
}

/* Naive reference: builds the padded image explicitly (reflect by mirroring already-placed rows
 * and columns about the edge) and returns the window at (dy, dx). */
static void reference_pad_crop(const float *img, int h, int w, int p, bool reflect, float fill,
                               int dy, int dx, float *out)
{
    int ph = h + 2 * p, pw = w + 2 * p;
    float *pad = malloc((size_t)ph * pw * sizeof *pad);
    for (int k = 0; k < ph * pw; k++) pad[k] = fill;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) pad[(y + p) * pw + x + p] = img[y * w + x];
    if (reflect) {
        for (int y = p; y < p + h; y++)
            for (int k = 1; k <= p; k++) {
                pad[y * pw + p - k] = pad[y * pw + p + k];
                pad[y * pw + p + w - 1 + k] = pad[y * pw + p + w - 1 - k];
            }
        for (int k = 1; k <= p; k++)
            for (int x = 0; x < pw; x++) {
                pad[(p - k) * pw + x] = pad[(p + k) * pw + x];
                pad[(p + h - 1 + k) * pw + x] = pad[(p + h - 1 - k) * pw + x];
            }
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) out[y * w + x] = pad[(y + dy) * pw + x + dx];
    free(pad);
}

/* Every random crop equals exactly one window of the padded image, and over many draws every
 * window position (corners included) occurs. */
static void test_crop_inside_padded(void **state)
{
    (void)state;
    enum { C = 2, H = 6, W = 7, P = 2, N = 600, D = 2 * P + 1 };
    zn_dataset ds;
    make_dataset(&ds, 1, C, H, W);
    ds.mean[0] = ds.mean[1] = 10.0f; /* zero padding then shows as -5, unlike any pixel */
    ds.std[0] = ds.std[1] = 2.0f;
    float *out = malloc((size_t)N * C * H * W * sizeof *out);
    for (int mode = 0; mode < 2; mode++) {
        zn_augment op = {.kind = ZN_AUG_PAD_CROP, .size = P,
                         .pad = mode ? ZN_PAD_ZERO : ZN_PAD_REFLECT};
        augment(&ds, &op, 1, 3, out, N);
        bool seen[D][D] = {{false}};
        float src[C][H * W], want[H * W];
        for (int ch = 0; ch < C; ch++)
            for (int k = 0; k < H * W; k++) src[ch][k] = (ds.images[ch * H * W + k] - 10.0f) / 2;
        for (int i = 0; i < N; i++) {
            int matches = 0;
            for (int dy = 0; dy < D; dy++)
                for (int dx = 0; dx < D; dx++) {
                    bool all = true;
                    for (int ch = 0; ch < C && all; ch++) {
                        reference_pad_crop(src[ch], H, W, P, !mode, -5.0f, dy, dx, want);
                        all = memcmp(want, out + ((size_t)i * C + ch) * H * W, sizeof want) == 0;
                    }
                    if (all) {
                        matches++;
                        seen[dy][dx] = true;
                    }
                }
            assert_int_equal(matches, 1);
        }
        for (int dy = 0; dy < D; dy++)
            for (int dx = 0; dx < D; dx++) assert_true(seen[dy][dx]);
    }
    free(out);
    zn_dataset_free(&ds);
}

/* Cutout zeroes exactly one size x size square, inside the image; all corner positions occur. */
static void test_cutout_inside(void **state)
{
    (void)state;
    enum { C = 3, H = 8, W = 9, S = 3, N = 800 };
    zn_dataset ds;
    make_dataset(&ds, 1, C, H, W); /* every pixel >= 1: only the cutout is 0 */
    float *out = malloc((size_t)N * C * H * W * sizeof *out);
    zn_augment op = {.kind = ZN_AUG_CUTOUT, .size = S};
    augment(&ds, &op, 1, 9, out, N);
    bool seen[H - S + 1][W - S + 1];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < N; i++) {
        int y0 = H, x0 = W, y1 = -1, x1 = -1, zeros = 0;
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    if (out[(((size_t)i * C + ch) * H + y) * W + x] != 0.0f) continue;
                    zeros++;
                    y0 = y < y0 ? y : y0;
                    x0 = x < x0 ? x : x0;
                    y1 = y > y1 ? y : y1;
                    x1 = x > x1 ? x : x1;
                }
        assert_int_equal(zeros, C * S * S);
        assert_int_equal(y1 - y0 + 1, S);
        assert_int_equal(x1 - x0 + 1, S);
        seen[y0][x0] = true;
    }
    for (int y = 0; y <= H - S; y++)
        for (int x = 0; x <= W - S; x++) assert_true(seen[y][x]);
    free(out);
    zn_dataset_free(&ds);
}

static void test_flip_probability(void **state)
{
    (void)state;
    enum { C = 1, H = 2, W = 3, N = 1000 };
    zn_dataset ds;
    make_dataset(&ds, 1, C, H, W);
    float out[N * C * H * W];
    const float p[3] = {0.0f, 1.0f, 0.5f};
    for (int t = 0; t < 3; t++) {
        zn_augment op = {.kind = ZN_AUG_FLIP, .p = p[t]};
        augment(&ds, &op, 1, 11, out, N);
        int flipped = 0;
        for (int i = 0; i < N; i++) flipped += out[i * C * H * W] == ds.images[W - 1];
        if (t < 2) assert_int_equal(flipped, (int)(p[t] * N));
        else assert_in_range(flipped, 430, 570);
    }
    zn_dataset_free(&ds);
}

static void test_augment_bad_ops(void **state)
{
    (void)state;
    zn_augmenter a;
    const float mean[1] = {0}, std[1] = {1};
    zn_augment big = {.kind = ZN_AUG_CUTOUT, .size = 33};
    assert_false(zn_augmenter_init(&a, 1, 32, 32, mean, std, &big, 1, err, sizeof err));
    assert_has(err, "cutout(33)");
    zn_augment pad = {.kind = ZN_AUG_PAD_CROP, .size = 32, .pad = ZN_PAD_REFLECT};
    assert_false(zn_augmenter_init(&a, 1, 32, 32, mean, std, &pad, 1, err, sizeof err));
    assert_has(err, "reflect padding");
    const float zero[1] = {0};
    assert_false(zn_augmenter_init(&a, 1, 32, 32, mean, zero, NULL, 0, err, sizeof err));
    assert_has(err, "std");
}

/* ---- batcher ---- */

/* n images of 1 x 2 x 2 whose first two pixels encode the index; normalisation 0 / 1. */
static void make_indexed(zn_dataset *ds, int n)
{
    make_dataset(ds, n, 1, 2, 2);
    for (int i = 0; i < n; i++) {
        ds->images[i * 4] = (uint8_t)(i & 255);
        ds->images[i * 4 + 1] = (uint8_t)(i >> 8);
        ds->labels[i] = (uint8_t)((i * 7) % 10);
    }
}

static zn_recipe plain_recipe(int batch, bool drop_last)
{
    zn_recipe r;
    zn_recipe_default(&r);
    r.batch = batch;
    r.drop_last = drop_last;
    r.n_augment = 0;
    r.seed = 1234;
    return r;
}

/* Runs one epoch; order[] receives the decoded image indices, returns how many; sizes of the
 * batches into sizes[]. */
static int run_epoch(const zn_dataset *ds, const zn_recipe *r, bool train, int epoch,
                     int *order, int *sizes, int *n_batches)
{
    zn_batcher b;
    if (!zn_batcher_init(&b, ds, r, train, epoch, err, sizeof err)) fail_msg("%s", err);
    float *images;
    int32_t *labels;
    int n, total = 0, k = 0;
    while (zn_batcher_next(&b, &images, &labels, &n)) {
        sizes[k++] = n;
        for (int i = 0; i < n; i++) {
            int idx = (int)images[i * 4] + 256 * (int)images[i * 4 + 1];
            assert_in_range(idx, 0, ds->n - 1);
            assert_int_equal(labels[i], ds->labels[idx]);
            order[total++] = idx;
        }
    }
    assert_false(zn_batcher_next(&b, &images, &labels, &n)); /* stays at the end */
    *n_batches = k;
    zn_batcher_free(&b);
    return total;
}

static void test_batcher_permutation(void **state)
{
    (void)state;
    enum { N = 1003, B = 100 };
    zn_dataset ds;
    make_indexed(&ds, N);
    int order[N], again[N], other[N], sizes[N], nb;
    for (int drop = 0; drop < 2; drop++) {
        zn_recipe r = plain_recipe(B, drop);
        int total = run_epoch(&ds, &r, true, 0, order, sizes, &nb);
        assert_int_equal(total, drop ? 1000 : N);
        assert_int_equal(nb, drop ? 10 : 11);
        for (int k = 0; k < nb; k++) assert_int_equal(sizes[k], k < 10 ? B : 3);
        int seen[N] = {0};
        for (int i = 0; i < total; i++) assert_int_equal(seen[order[i]]++, 0);
        int in_place = 0;
        for (int i = 0; i < total; i++) in_place += order[i] == i;
        assert_true(in_place < 20); /* shuffled */
        run_epoch(&ds, &r, true, 0, again, sizes, &nb);
        assert_memory_equal(order, again, (size_t)total * sizeof *order);
        run_epoch(&ds, &r, true, 1, other, sizes, &nb);
        assert_memory_not_equal(order, other, (size_t)total * sizeof *order);
    }
    zn_dataset_free(&ds);
}

/* Over many seeds, each of the 24 orders of 4 images comes up about equally often (a biased
 * shuffle, e.g. Sattolo's cycles only, would miss some). */
static void test_batcher_shuffle_uniform(void **state)
{
    (void)state;
    enum { N = 4, SEEDS = 2400 };
    zn_dataset ds;
    make_indexed(&ds, N);
    zn_recipe r = plain_recipe(N, false);
    int hist[256] = {0}, order[N], sizes[N], nb;
    for (int seed = 0; seed < SEEDS; seed++) {
        r.seed = (unsigned long long)seed;
        run_epoch(&ds, &r, true, 0, order, sizes, &nb);
        hist[order[0] * 64 + order[1] * 16 + order[2] * 4 + order[3]]++;
    }
    int distinct = 0;
    for (int k = 0; k < 256; k++) {
        if (!hist[k]) continue;
        distinct++;
        assert_in_range(hist[k], 50, 150); /* expected 100 */
    }
    assert_int_equal(distinct, 24);
    zn_dataset_free(&ds);
}

static void test_batcher_eval(void **state)
{
    (void)state;
    enum { N = 250 };
    zn_dataset ds;
    make_indexed(&ds, N);
    zn_recipe r; /* with augmentation, shuffle and drop_last: evaluation ignores them */
    zn_recipe_default(&r);
    r.batch = 64;
    r.mean[0] = 0;
    r.std[0] = 1;
    r.n_norm = 1;
    int order[N], sizes[N], nb;
    assert_int_equal(run_epoch(&ds, &r, false, 3, order, sizes, &nb), N);
    assert_int_equal(nb, 4);
    assert_int_equal(sizes[3], N - 3 * 64);
    for (int i = 0; i < N; i++) assert_int_equal(order[i], i);
    zn_dataset_free(&ds);
}

/* All batches of an epoch with the full DavidNet augmentation, concatenated. */
static float *epoch_bytes(const zn_dataset *ds, const zn_recipe *r, int epoch, bool slow,
                          size_t *floats)
{
    size_t per = (size_t)ds->c * ds->h * ds->w;
    float *all = malloc((size_t)ds->n * per * sizeof *all);
    zn_batcher b;
    if (!zn_batcher_init(&b, ds, r, true, epoch, err, sizeof err)) fail_msg("%s", err);
    float *images;
    int32_t *labels;
    int n;
    size_t at = 0;
    while (zn_batcher_next(&b, &images, &labels, &n)) {
        if (slow) nanosleep(&(struct timespec){0, 2000000}, NULL); /* let the thread run ahead */
        memcpy(all + at, images, (size_t)n * per * sizeof *all);
        at += (size_t)n * per;
    }
    zn_batcher_free(&b);
    *floats = at;
    return all;
}

static void test_batcher_deterministic(void **state)
{
    (void)state;
    zn_dataset ds;
    make_random_dataset(&ds, 70, 2);
    zn_recipe r;
    zn_recipe_default(&r);
    r.batch = 16;
    r.seed = 99;
    ds.mean[0] = ds.mean[1] = ds.mean[2] = 128.0f;
    ds.std[0] = ds.std[1] = ds.std[2] = 64.0f;
    size_t n1, n2, n3, n4;
    float *a = epoch_bytes(&ds, &r, 0, false, &n1);
    float *b = epoch_bytes(&ds, &r, 0, true, &n2);
    float *c = epoch_bytes(&ds, &r, 1, false, &n3);
    r.seed = 100;
    float *d = epoch_bytes(&ds, &r, 0, false, &n4);
    assert_int_equal(n1, (size_t)64 * 3072); /* drop_last: 4 batches of 16 */
    assert_int_equal(n2, n1);
    assert_memory_equal(a, b, n1 * sizeof *a);
    assert_memory_not_equal(a, c, n1 * sizeof *a);
    assert_memory_not_equal(a, d, n1 * sizeof *a);
    free(a);
    free(b);
    free(c);
    free(d);

    /* identical images in data set order: batches still differ, each has its own draws */
    memset(ds.images, 77, (size_t)ds.n * 3072);
    r.shuffle = false;
    a = epoch_bytes(&ds, &r, 0, false, &n1);
    assert_memory_not_equal(a, a + 16 * 3072, (size_t)16 * 3072 * sizeof *a);
    free(a);
    zn_dataset_free(&ds);
}

static void test_batcher_early_free_and_errors(void **state)
{
    (void)state;
    zn_dataset ds;
    make_indexed(&ds, 500);
    zn_recipe r = plain_recipe(10, false);
    zn_batcher b;
    float *images;
    int32_t *labels;
    int n;
    assert_true(zn_batcher_init(&b, &ds, &r, true, 0, err, sizeof err));
    assert_true(zn_batcher_next(&b, &images, &labels, &n));
    zn_batcher_free(&b); /* mid-epoch: the thread must stop, not hang */
    assert_true(zn_batcher_init(&b, &ds, &r, true, 0, err, sizeof err));
    zn_batcher_free(&b); /* before any batch */

    r.batch = 0;
    assert_false(zn_batcher_init(&b, &ds, &r, true, 0, err, sizeof err));
    assert_has(err, "batch size 0");
    r = plain_recipe(10, false);
    r.n_norm = 3;
    assert_false(zn_batcher_init(&b, &ds, &r, true, 0, err, sizeof err));
    assert_has(err, "normalises 3 channels but the data has 1");
    zn_recipe_default(&r); /* cutout 8 does not fit a 2x2 image */
    assert_false(zn_batcher_init(&b, &ds, &r, true, 0, err, sizeof err));
    assert_has(err, "pad_crop(4, reflect)");
    assert_int_equal(zn_batches_per_epoch(50000, 512, true), 97);
    assert_int_equal(zn_batches_per_epoch(10000, 512, false), 20);
    zn_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_known_values),
        cmocka_unit_test(test_rng_save_restore),
        cmocka_unit_test(test_rng_distributions),
        cmocka_unit_test(test_cifar_files_valid),
        cmocka_unit_test(test_cifar_files_errors),
        cmocka_unit_test(test_cifar_official_size),
        cmocka_unit_test(test_idx_valid),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_idx_gzip_corrupt),
        cmocka_unit_test(test_fashion_missing),
        cmocka_unit_test(test_data_dir_resolve),
        cmocka_unit_test(test_real_cifar10),
        cmocka_unit_test(test_real_fashion_mnist),
        cmocka_unit_test(test_normalize_known),
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_augment_seeded),
        cmocka_unit_test(test_crop_inside_padded),
        cmocka_unit_test(test_cutout_inside),
        cmocka_unit_test(test_flip_probability),
        cmocka_unit_test(test_augment_bad_ops),
        cmocka_unit_test(test_batcher_permutation),
        cmocka_unit_test(test_batcher_shuffle_uniform),
        cmocka_unit_test(test_batcher_eval),
        cmocka_unit_test(test_batcher_deterministic),
        cmocka_unit_test(test_batcher_early_free_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
