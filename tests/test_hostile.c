/* test_hostile.c: damaged and hostile inputs, one table per reader: data folders (IDX plain and
 * gzip'd, CIFAR-10 batches) and checkpoints (every cut point, flipped bytes, impossible sizes,
 * NaN inside). Each case must be refused with false, a message naming the file and the problem,
 * nothing allocated, and no crash; fixtures are built small in a temporary folder. */
#include "support.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/checkpoint.h"
#include "runtime/dataset.h"

static char err[2048];

static void assert_has(const char *text, const char *part)
{
    if (!strstr(text, part)) fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

/* A fresh empty folder <tmpdir>/name (the path in a static buffer). */
static const char *fresh_dir(const char *name)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", zt_tmpdir(), name);
    assert_int_equal(mkdir(dir, 0700), 0);
    return dir;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* ---- data folders: Fashion-MNIST (IDX) ---- */

/* How a file of the fixture is stored: plain, gzip'd, gzip'd then damaged, not at all, or as a
 * folder of that name. */
typedef enum { PLAIN, GZ, GZ_CUT, GZ_JUNK, GZ_FLIP, GZ_GARBAGE, ABSENT, FOLDER } idx_form;

typedef struct {
    uint32_t magic, count, rows, cols; /* rows and cols only for images */
    long data;                         /* bytes after the header; -1: what the header claims */
    int header_cut;                    /* bytes missing from the end of the header */
    int bad_label;                     /* labels only: record 0's label when non-zero */
    idx_form form;
} idx_file_spec;

typedef struct {
    const char *name;
    idx_file_spec img, lab;
    bool blames_labels; /* the message names the label file, not the image file */
    const char *fragment;
} idx_case;

#define IMG(count, rows, cols) {2051, count, rows, cols, -1, 0, 0, PLAIN}
#define LAB(count) {2049, count, 0, 0, -1, 0, 0, PLAIN}
#define LAB_CUT(count) {2049, count, 0, 0, 5, 0, 0, PLAIN} /* claims count, holds 5 */
static const idx_file_spec IMG_OK = IMG(5, 28, 28), LAB_OK = LAB(5);

static const idx_case idx_cases[] = {
    {"images absent", {.form = ABSENT}, LAB(5), false, "no such file"},
    {"labels absent", IMG(5, 28, 28), {.form = ABSENT}, true, "no such file"},
    {"images a folder", {.form = FOLDER}, LAB(5), false, "not a regular file"},
    {"image magic", {2049, 5, 28, 28, -1, 0, 0, PLAIN}, LAB(5), false,
     "magic number 2049, expected 2051"},
    {"label magic", IMG(5, 28, 28), {2051, 5, 0, 0, -1, 0, 0, GZ}, true,
     "magic number 2051, expected 2049"},
    {"image header cut", {2051, 5, 28, 28, 0, 5, 0, PLAIN}, LAB(5), false,
     "too short for the 16-byte IDX header"},
    {"label header cut", IMG(5, 28, 28), {2049, 5, 0, 0, 0, 1, 0, GZ}, true,
     "too short for the 8-byte IDX header"},
    {"zero images", IMG(0, 28, 28), LAB(0), false, "image count 0 is not in 1.."},
    {"2^32-1 images", {2051, 0xffffffffu, 28, 28, 100, 0, 0, PLAIN}, LAB(5), false,
     "image count 4294967295 is not in 1.."},
    {"zero rows", IMG(5, 0, 28), LAB(5), false, "image size 0x28 is not in 1..4096"},
    {"5000 columns", {2051, 5, 28, 5000, 100, 0, 0, PLAIN}, LAB(5), false,
     "image size 28x5000 is not in 1..4096"},
    {"label count mismatch", IMG(5, 28, 28), LAB(4), true, "holds 5 images but"},
    {"60000 x 4096 x 4096 claimed", {2051, 60000, 4096, 4096, 100, 0, 0, PLAIN}, LAB_CUT(60000), false,
     "the header claims 1006632960000 bytes of data, the file holds 100"},
    {"60000 x 4096 x 4096 claimed, gzip'd", {2051, 60000, 4096, 4096, 100, 0, 0, GZ}, LAB_CUT(60000),
     false, "the header claims 1006632960000 bytes of data, the gzip stream holds 100"},
    {"2^31-1 images of 1x1 claimed", {2051, 0x7fffffffu, 1, 1, 5, 0, 0, PLAIN},
     LAB_CUT(0x7fffffffu), false,
     "the header claims 2147483647 bytes of data, the file holds 5"},
    {"image data cut", {2051, 5, 28, 28, 3000, 0, 0, PLAIN}, LAB(5), false,
     "truncated: data ends in image 3 of 5"},
    {"image data cut, gzip'd", {2051, 5, 28, 28, 3000, 0, 0, GZ}, LAB(5), false,
     "truncated: data ends in image 3 of 5"},
    {"label data cut", IMG(5, 28, 28), {2049, 5, 0, 0, 2, 0, 0, PLAIN}, true,
     "truncated: data ends in label 2 of 5"},
    {"image data too long", {2051, 5, 28, 28, 5 * 784 + 9, 0, 0, GZ}, LAB(5), false,
     "trailing bytes after 5 images"},
    {"label data too long", IMG(5, 28, 28), {2049, 5, 0, 0, 6, 0, 0, PLAIN}, true,
     "trailing bytes after 5 labels"},
    {"label out of range", IMG(5, 28, 28), {2049, 5, 0, 0, -1, 0, 200, GZ}, true,
     "record 0: label 200 is not in 0..9"},
    {"gzip cut in half", {2051, 5, 28, 28, -1, 0, 0, GZ_CUT}, LAB(5), false,
     "gzip data corrupt or cut short"},
    {"gzip with junk after it", IMG(5, 28, 28), {2049, 5, 0, 0, -1, 0, 0, GZ_JUNK}, true,
     "bytes after the end of the gzip data"},
    {"gzip bytes flipped", {2051, 5, 28, 28, -1, 0, 0, GZ_FLIP}, LAB(5), false,
     "gzip data corrupt or cut short"},
    {"gzip magic, then garbage", {2051, 5, 28, 28, -1, 0, 0, GZ_GARBAGE}, LAB(5), false,
     "gzip data corrupt or cut short"},
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* The gzip'd form of n bytes (compress2 with a gzip wrapper), then damaged as form says. */
static uint8_t *gzip_damaged(const uint8_t *raw, size_t n, idx_form form, size_t *out_n)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, n) + 8;
    uint8_t *gz = malloc(cap);
    assert_non_null(gz);
    z.next_in = (uint8_t *)raw, z.avail_in = (uInt)n, z.next_out = gz, z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = z.total_out;
    deflateEnd(&z);
    if (form == GZ_CUT) len /= 2;
    if (form == GZ_JUNK) memcpy(gz + len, "JUNK", 4), len += 4;
    for (size_t k = 12; form == GZ_FLIP && k + 8 < len; k += 5) gz[k] ^= 0xa5;
    for (size_t k = 10; form == GZ_GARBAGE && k < len; k++) gz[k] = (uint8_t)(k * 131 + 7);
    *out_n = len;
    return gz;
}

/* Writes one IDX file of the fixture at base (".gz" added when gzip'd); its path into path. */
static void write_idx(const char *base, const idx_file_spec *s, bool images, char *path,
                      size_t len)
{
    snprintf(path, len, "%s%s", base, s->form == PLAIN || s->form >= ABSENT ? "" : ".gz");
    if (s->form == FOLDER) assert_int_equal(mkdir(path, 0700), 0);
    if (s->form >= ABSENT) return;
    size_t header = images ? 16 : 8;
    size_t rec = images ? (size_t)s->rows * s->cols : 1;
    size_t data = s->data >= 0 ? (size_t)s->data : s->count * rec;
    size_t n = header - (size_t)s->header_cut + (s->header_cut ? 0 : data);
    uint8_t *raw = calloc(header + data, 1);
    assert_non_null(raw);
    put_be32(raw, s->magic);
    put_be32(raw + 4, s->count);
    if (images) put_be32(raw + 8, s->rows), put_be32(raw + 12, s->cols);
    for (size_t i = 0; !images && i < data; i++) raw[header + i] = (uint8_t)(i % 10);
    if (!images && s->bad_label) raw[header] = (uint8_t)s->bad_label;
    if (s->form == PLAIN) {
        write_bytes(path, raw, n);
    } else {
        size_t gz_n;
        uint8_t *gz = gzip_damaged(raw, n, s->form, &gz_n);
        write_bytes(path, gz, gz_n);
        free(gz);
    }
    free(raw);
}

static void test_idx_table(void **state)
{
    (void)state;
    int k = 0;
    for (const idx_case *c = idx_cases; c < idx_cases + sizeof idx_cases / sizeof *idx_cases;
         c++, k++) {
        char name[32], base[600], img[640], lab[640];
        snprintf(name, sizeof name, "idx%02d", k);
        const char *dir = fresh_dir(name);
        snprintf(base, sizeof base, "%s/t10k-images-idx3-ubyte", dir);
        write_idx(base, &c->img, true, img, sizeof img);
        snprintf(base, sizeof base, "%s/t10k-labels-idx1-ubyte", dir);
        write_idx(base, &c->lab, false, lab, sizeof lab);
        zn_dataset ds;
        err[0] = '\0';
        if (zn_dataset_load("fashion_mnist", dir, false, false, &ds, err, sizeof err))
            fail_msg("case '%s' was accepted", c->name);
        if (!strstr(err, c->blames_labels ? lab : img) || !strstr(err, c->fragment))
            fail_msg("case '%s': message \"%s\" lacks the %s file or \"%s\"", c->name, err,
                     c->blames_labels ? "label" : "image", c->fragment);
        assert_null(ds.images);
        assert_null(ds.labels);
    }
    /* the fixture itself is sound: the same files undamaged load */
    char base[600], img[640], lab[640];
    const char *dir = fresh_dir("idx_sound");
    idx_file_spec gz_lab = LAB_OK;
    gz_lab.form = GZ;
    snprintf(base, sizeof base, "%s/t10k-images-idx3-ubyte", dir);
    write_idx(base, &IMG_OK, true, img, sizeof img);
    snprintf(base, sizeof base, "%s/t10k-labels-idx1-ubyte", dir);
    write_idx(base, &gz_lab, false, lab, sizeof lab);
    zn_dataset ds;
    if (!zn_dataset_load("fashion_mnist", dir, false, false, &ds, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(ds.n, 5);
    assert_int_equal(ds.labels[4], 4);
    zn_dataset_free(&ds);
}

/* ---- data folders: CIFAR-10 ---- */

/* test_batch.bin as a sparse file of `size` bytes (all labels 0: valid), then one byte set. */
typedef struct {
    const char *name;
    long long size;      /* -1: absent; -2: a folder of that name */
    long long poke_at;   /* -1: none */
    uint8_t poke;
    const char *meta;    /* batches.meta.txt, or NULL */
    const char *file;    /* the file the message must name */
    const char *fragment;
} cifar_case;

#define CIFAR_SIZE ((long long)ZN_CIFAR10_RECORD * ZN_CIFAR10_FILE_RECORDS)

static const cifar_case cifar_cases[] = {
    {"batch absent", -1, -1, 0, NULL, "test_batch.bin", "no such file"},
    {"batch is a folder", -2, -1, 0, NULL, "test_batch.bin", "not a regular file"},
    {"batch empty", 0, -1, 0, NULL, "test_batch.bin", "0 bytes, expected 30730000"},
    {"batch cut", CIFAR_SIZE - 1000, -1, 0, NULL, "test_batch.bin",
     "30729000 bytes, expected 30730000"},
    {"batch one byte long", CIFAR_SIZE + 1, -1, 0, NULL, "test_batch.bin",
     "30730001 bytes, expected 30730000"},
    {"batch 64 GiB (sparse)", 1LL << 36, -1, 0, NULL, "test_batch.bin",
     "68719476736 bytes, expected 30730000"},
    {"label 200", CIFAR_SIZE, 77LL * ZN_CIFAR10_RECORD, 200, NULL, "test_batch.bin",
     "record 77: label 200 is not in 0..9"},
    {"label 10 in the last record", CIFAR_SIZE, CIFAR_SIZE - ZN_CIFAR10_RECORD, 10, NULL,
     "test_batch.bin", "record 9999: label 10 is not in 0..9"},
    {"eleven class names", CIFAR_SIZE, -1, 0, "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\nten\n",
     "batches.meta.txt", "line 11: more than 10 class names"},
    {"two class names", CIFAR_SIZE, -1, 0, "a\nb\n", "batches.meta.txt",
     "2 class names, expected 10"},
    {"a 40-byte class name", CIFAR_SIZE, -1, 0, "0123456789012345678901234567890123456789\n",
     "batches.meta.txt", "line 1: class name longer than 31 characters"},
};

static void write_cifar_case(const char *dir, const cifar_case *c)
{
    char path[700];
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    if (c->size == -2) assert_int_equal(mkdir(path, 0700), 0);
    if (c->size >= 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)c->size), 0);
        if (c->poke_at >= 0) assert_int_equal(pwrite(fd, &c->poke, 1, (off_t)c->poke_at), 1);
        assert_int_equal(close(fd), 0);
    }
    if (c->meta) {
        snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
        write_bytes(path, c->meta, strlen(c->meta));
    }
}

static void test_cifar_table(void **state)
{
    (void)state;
    int k = 0;
    for (const cifar_case *c = cifar_cases;
         c < cifar_cases + sizeof cifar_cases / sizeof *cifar_cases; c++, k++) {
        char name[32], want[700];
        snprintf(name, sizeof name, "cifar%02d", k);
        const char *dir = fresh_dir(name);
        write_cifar_case(dir, c);
        snprintf(want, sizeof want, "%s/%s", dir, c->file);
        zn_dataset ds;
        err[0] = '\0';
        if (zn_dataset_load("cifar10", dir, false, false, &ds, err, sizeof err))
            fail_msg("case '%s' was accepted", c->name);
        if (!strstr(err, want) || !strstr(err, c->fragment))
            fail_msg("case '%s': message \"%s\" lacks \"%s\" or \"%s\"", c->name, err, want,
                     c->fragment);
        assert_null(ds.images);
    }
    /* the training split names the first missing batch */
    zn_dataset ds;
    assert_false(zn_dataset_load("cifar10", fresh_dir("cifar_train"), true, false, &ds, err,
                                 sizeof err));
    assert_has(err, "data_batch_1.bin: no such file");
}

/* ---- checkpoints ---- */

/* A real small checkpoint (5 parameters, 3 optimizer floats: 96 bytes) and its bytes. */
enum { CK_PARAMS = 5, CK_OPTIM = 3, CK_BYTES = 56 + 4 * (CK_PARAMS + CK_OPTIM) + 8 };
static const zn_ckpt_meta ck_meta = {.graph_hash = 0x1234, .epoch = 3, .step = 17, .seed = 5,
                                     .n_params = CK_PARAMS, .n_optim = CK_OPTIM};

static void save_checkpoint(const char *path, const float *params, const float *optim,
                            unsigned char *bytes)
{
    assert_true(zn_ckpt_save(path, &ck_meta, params, optim, err, sizeof err));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(bytes, 1, CK_BYTES + 1, f), CK_BYTES);
    fclose(f);
}

/* Loads path, which must be refused with a message naming it and holding each fragment. */
static void expect_refused(const char *path, const char *what, const char *f1, const char *f2)
{
    zn_ckpt_meta m;
    float *p = (float *)&m, *q = (float *)&m; /* must come back NULL */
    err[0] = '\0';
    if (zn_ckpt_load(path, &m, &p, &q, err, sizeof err)) fail_msg("%s: accepted", what);
    assert_null(p);
    assert_null(q);
    if (!strstr(err, path) || !strstr(err, f1) || (f2 && !strstr(err, f2)))
        fail_msg("%s: message \"%s\" lacks the path, \"%s\" or \"%s\"", what, err, f1,
                 f2 ? f2 : "");
}

static const float ck_params[CK_PARAMS] = {1, -2, 3.5f, 0, 5}, ck_optim[CK_OPTIM] = {0.25f, 0, 1};

/* Every byte count short of the whole file says truncated, and where. */
static void test_checkpoint_every_cut(void **state)
{
    (void)state;
    unsigned char bytes[CK_BYTES + 1];
    char path[512], cut[512], where[128];
    snprintf(path, sizeof path, "%s/whole.ckpt", zt_tmpdir());
    snprintf(cut, sizeof cut, "%s/cut.ckpt", zt_tmpdir());
    save_checkpoint(path, ck_params, ck_optim, bytes);
    for (size_t n = 0; n < CK_BYTES; n++) {
        write_bytes(cut, bytes, n);
        if (n < 56)
            snprintf(where, sizeof where, "ends after %zu bytes, inside its 56-byte header", n);
        else
            snprintf(where, sizeof where, "ends after %zu bytes, the header says %d", n, CK_BYTES);
        char what[64];
        snprintf(what, sizeof what, "cut after %zu bytes", n);
        expect_refused(cut, what, "is truncated: it", where);
    }
    zn_ckpt_meta m;
    float *p, *q;
    if (!zn_ckpt_load(path, &m, &p, &q, err, sizeof err)) fail_msg("%s", err);
    assert_memory_equal(p, ck_params, sizeof ck_params);
    free(p);
    free(q);
}

/* One damaged byte: where it is, how it is changed, and what the message must say. */
typedef struct {
    const char *what;
    int at;
    uint8_t xor_with;
    const char *fragment;
} ck_flip;

static const ck_flip ck_flips[] = {
    {"magic, first byte", 0, 0x20, "is not a znet checkpoint"},
    {"magic, last byte", 7, 0x01, "is not a znet checkpoint"},
    {"version 2 -> 3", 8, 0x01, "format version 3; this znet reads versions 1 to 2"},
    {"version 2 -> 0", 8, 0x02, "format version 0; this znet reads versions 1 to 2"},
    {"version's high byte", 11, 0x80, "format version 2147483650; this znet reads versions 1 to 2"},
    {"graph fingerprint", 12, 0x01, "is corrupted (checksum mismatch"},
    {"epoch made negative", 23, 0x80, "is corrupted (impossible sizes in its header: epoch"},
    {"step", 24, 0x04, "is corrupted (checksum mismatch"},
    {"step beyond its epochs", 31, 0x40, "is corrupted (impossible sizes"},
    {"seed", 32, 0xff, "is corrupted (checksum mismatch"},
    {"parameter count up", 40, 0x80, "is truncated: it ends after 96 bytes, the header says 608"},
    {"parameter count down", 40, 0x01, "has 4 extra bytes after its checksum"},
    {"parameter count's high byte", 47, 0x10, "is corrupted (impossible sizes"},
    {"optimizer count up", 48, 0x04, "is truncated: it ends after 96 bytes, the header says 112"},
    {"optimizer count's high byte", 55, 0x01, "is corrupted (impossible sizes"},
    {"first parameter", 56, 0x01, "is corrupted (checksum mismatch"},
    {"a parameter's sign", 63, 0x80, "is corrupted (checksum mismatch"},
    {"last optimizer float", 87, 0x40, "is corrupted (checksum mismatch"},
    {"checksum, first byte", 88, 0x01, "is corrupted (checksum mismatch"},
    {"checksum, last byte", 95, 0x80, "is corrupted (checksum mismatch"},
};

static void test_checkpoint_flips(void **state)
{
    (void)state;
    unsigned char bytes[CK_BYTES + 1];
    char path[512];
    snprintf(path, sizeof path, "%s/flip.ckpt", zt_tmpdir());
    for (const ck_flip *c = ck_flips; c < ck_flips + sizeof ck_flips / sizeof *ck_flips; c++) {
        save_checkpoint(path, ck_params, ck_optim, bytes);
        bytes[c->at] ^= c->xor_with;
        write_bytes(path, bytes, CK_BYTES);
        expect_refused(path, c->what, c->fragment, NULL);
    }
}

/* Whole-file damage: other content, extra bytes, values a finite run never writes, and a path
 * that is no file. */
static void test_checkpoint_other_damage(void **state)
{
    (void)state;
    unsigned char bytes[CK_BYTES + 1];
    char path[512];
    snprintf(path, sizeof path, "%s/other.ckpt", zt_tmpdir());

    write_bytes(path, "hello, world", 12);
    expect_refused(path, "text", "is not a znet checkpoint", NULL);
    write_bytes(path, "\x1f\x8b\x08\x00", 4);
    expect_refused(path, "a gzip header", "is not a znet checkpoint", NULL);

    save_checkpoint(path, ck_params, ck_optim, bytes);
    bytes[CK_BYTES] = 0;
    write_bytes(path, bytes, CK_BYTES + 1);
    expect_refused(path, "a byte appended", "has 1 extra bytes after its checksum",
                   "it holds 97 bytes, the header says 96");

    const float nan_params[CK_PARAMS] = {1, 2, NAN, 4, 5}, inf_optim[CK_OPTIM] = {0, -INFINITY, 0};
    save_checkpoint(path, nan_params, ck_optim, bytes);
    expect_refused(path, "NaN parameter", "non-finite parameter value (nan at float 2 of 5)", NULL);
    save_checkpoint(path, ck_params, inf_optim, bytes);
    expect_refused(path, "infinite optimizer state",
                   "non-finite optimizer state value (-inf at float 1 of 3)", NULL);

    snprintf(path, sizeof path, "%s/a_folder.ckpt", zt_tmpdir());
    assert_int_equal(mkdir(path, 0700), 0);
    expect_refused(path, "a folder", "is not a checkpoint: not a regular file", NULL);
    snprintf(path, sizeof path, "%s/a_fifo.ckpt", zt_tmpdir()); /* no writer: refused, not waited on */
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_refused(path, "a FIFO", "is not a checkpoint: not a regular file", NULL);
    snprintf(path, sizeof path, "%s/absent.ckpt", zt_tmpdir());
    expect_refused(path, "absent", "cannot open checkpoint", "No such file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_table),
        cmocka_unit_test(test_cifar_table),
        cmocka_unit_test(test_checkpoint_every_cut),
        cmocka_unit_test(test_checkpoint_flips),
        cmocka_unit_test(test_checkpoint_other_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
