/* test_npy.c: the NumPy reader (data/npy.c): the strict .npy header parser, layouts and dtypes,
 * refusals that name the file and the problem, .npz archives; and on real CIFAR-10 (skipped
 * when absent) the test images written as .npy (NHWC uint8) and .npz read back equal to the
 * binary's, and a checkpoint evaluating to the same accuracy from all three. The arrays are
 * written here in C (the format is simple), the archives with libarchive. */
#include "support.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "lang/program.h"
#include "runtime/train.h"

/* A .npy image in memory: header dict `dict` (padded to 64 bytes as numpy does) in format
 * `version`, then len data bytes. */
static uint8_t *npy_bytes(int version, const char *dict, const void *data, size_t len, size_t *out_len)
{
    size_t pre = version == 1 ? 10 : 12, text = strlen(dict);
    size_t hlen = (pre + text + 1 + 63) / 64 * 64 - pre;
    uint8_t *b = malloc(pre + hlen + len);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)version, b[7] = 0;
    for (int i = 0; i < (version == 1 ? 2 : 4); i++) b[8 + i] = (uint8_t)(hlen >> (8 * i));
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, text);
    b[pre + hlen - 1] = '\n';
    if (len) memcpy(b + pre + hlen, data, len);
    *out_len = pre + hlen + len;
    return b;
}

static uint8_t *array_bytes(const char *descr, const char *shape, const void *data, size_t len, size_t *out_len)
{
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    return npy_bytes(1, dict, data, len, out_len);
}

static void put_file(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* dir/name.npy holding the array. */
static void write_array(const char *dir, const char *name, const char *descr, const char *shape, const void *data,
                        size_t len)
{
    size_t n;
    uint8_t *b = array_bytes(descr, shape, data, len, &n);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    put_file(path, b, n);
    free(b);
}

static const char *fresh_dir(const char *name)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", zt_tmpdir(), name);
    mkdir(dir, 0755);
    return dir;
}

/* The parser's verdict on a header, and (refused) that its message says `want`. */
static void header_case(int version, const char *dict, size_t data_len, const char *want)
{
    static const uint8_t zeros[64];
    size_t n;
    uint8_t *b = npy_bytes(version, dict, zeros, data_len, &n);
    zn_npy_array a;
    char err[512] = "";
    bool ok = zn_npy_parse_header(b, n, &a, err, sizeof err);
    free(b);
    if (!want) {
        if (!ok) fail_msg("refused %s: %s", dict, err);
        return;
    }
    if (ok) fail_msg("accepted %s", dict);
    if (!strstr(err, want)) fail_msg("for %s: wanted '%s' in '%s'", dict, want, err);
}

static void test_header_strict(void **state)
{
    (void)state;
    size_t n;
    uint8_t d[24] = {0};
    zn_npy_array a;
    char err[512];
    for (int v = 1; v <= 3; v++) { /* all three versions, double-quoted too */
        uint8_t *b = npy_bytes(v, "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2, 3)}", d, 24, &n);
        assert_true(zn_npy_parse_header(b, n, &a, err, sizeof err));
        assert_int_equal(a.rank, 2);
        assert_int_equal(a.shape[1], 3);
        assert_int_equal(a.kind, 'i');
        assert_int_equal(a.item, 4);
        free(b);
    }
    header_case(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", 5, NULL);
    header_case(1, "{'shape': (), 'fortran_order': False, 'descr': '>f4'}", 4, NULL); /* any order */
    header_case(1, "{'descr': '|u1', 'fortran_order': True, 'shape': (5,), }", 5, "fortran_order is True");
    header_case(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }", 10, "dtype '<f2'");
    header_case(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (5,), }", 40, "dtype '<c8'");
    header_case(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (5,), }", 60, "dtype '<U3'");
    header_case(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", 4, "truncated");
    header_case(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", 6, "trailing bytes");
    header_case(1, "{'descr': '|u1', 'shape': (5,), }", 5, "lacks 'fortran_order'");
    header_case(1, "{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (5,)}", 5, "twice");
    header_case(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), 'x': 1}", 5, "unknown key 'x'");
    header_case(1, "{'descr': '|u1', 'fortran_order': False, 'shape': [5]}", 5, "shape");
    header_case(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5)}", 5, "shape"); /* an int, no tuple */
    header_case(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (-5,)}", 5, "shape");
    header_case(1, "{'descr': '|u1', 'fortran_order': 0, 'shape': (5,)}", 5, "True or False");
    header_case(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999)}", 5,
                "overflows");
    header_case(1, "['descr']", 0, "not a dict");
    /* the magic, the version, a header length past the end, a header without its newline */
    uint8_t *b = array_bytes("|u1", "(1,)", d, 1, &n);
    b[1] = 'X';
    assert_false(zn_npy_parse_header(b, n, &a, err, sizeof err));
    assert_non_null(strstr(err, "magic"));
    b[1] = 'N', b[6] = 4;
    assert_false(zn_npy_parse_header(b, n, &a, err, sizeof err));
    assert_non_null(strstr(err, "version 4.0"));
    b[6] = 1, b[9] = 0x7f;
    assert_false(zn_npy_parse_header(b, n, &a, err, sizeof err));
    assert_non_null(strstr(err, "truncated"));
    b[9] = 0, b[n - 2] = ' ';
    assert_false(zn_npy_parse_header(b, n, &a, err, sizeof err));
    assert_non_null(strstr(err, "newline"));
    assert_false(zn_npy_parse_header(b, 7, &a, err, sizeof err));
    free(b);
}

/* Two 2 x 3 RGB images, pixel value 100 * image + 10 * channel + position, as NHWC and NCHW. */
static void two_images(uint8_t nhwc[36], uint8_t nchw[36])
{
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 6; p++) {
                uint8_t v = (uint8_t)(100 * i + 10 * c + p);
                nhwc[i * 18 + p * 3 + c] = v;
                nchw[i * 18 + c * 6 + p] = v;
            }
}

static bool load(const char *path, bool nchw, zn_dataset *ds, char *err)
{
    return zn_npy_load(path, false, nchw, 10, ds, err, 512);
}

static void test_layouts_and_dtypes(void **state)
{
    (void)state;
    uint8_t nhwc[36], nchw[36];
    two_images(nhwc, nchw);
    const int64_t labels[2] = {3, 9};
    zn_dataset ds;
    char err[512] = "";
    const char *dir = fresh_dir("layouts");
    write_array(dir, "test_labels.npy", "<i8", "(2,)", labels, sizeof labels);
    write_array(dir, "test_images.npy", "|u1", "(2, 2, 3, 3)", nhwc, sizeof nhwc);
    assert_true(load(dir, false, &ds, err));
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.c, 3);
    assert_int_equal(ds.h, 2);
    assert_int_equal(ds.w, 3);
    assert_memory_equal(ds.images, nchw, 36);
    assert_int_equal(ds.labels[1], 9);
    assert_null(ds.map); /* transposed into memory of its own */
    zn_dataset_free(&ds);

    write_array(dir, "test_images.npy", "|u1", "(2, 3, 2, 3)", nchw, sizeof nchw);
    assert_true(load(dir, true, &ds, err));
    assert_memory_equal(ds.images, nchw, 36);
    assert_non_null(ds.map); /* znet's own layout: used from the mapping */
    zn_dataset_free(&ds);

    float f[36];
    for (int i = 0; i < 36; i++) f[i] = nhwc[i] / 255.0f;
    write_array(dir, "test_images.npy", "<f4", "(2, 2, 3, 3)", f, sizeof f);
    const int32_t labels32[2] = {3, 9};
    write_array(dir, "test_labels.npy", "<i4", "(2,)", labels32, sizeof labels32);
    assert_true(load(dir, false, &ds, err));
    assert_memory_equal(ds.images, nchw, 36); /* 0-1 floats of bytes come back as those bytes */
    zn_dataset_free(&ds);

    const uint8_t labels_be[8] = {0, 0, 0, 3, 0, 0, 0, 9}; /* big-endian int32 */
    write_array(dir, "test_labels.npy", ">i4", "(2,)", labels_be, sizeof labels_be);
    write_array(dir, "test_images.npy", "|u1", "(2, 2, 3)", nchw, 12); /* N, H, W: one channel */
    assert_true(load(dir, false, &ds, err));
    assert_int_equal(ds.c, 1);
    assert_int_equal(ds.labels[0], 3);
    zn_dataset_free(&ds);
}

/* Loading dir's test split fails with a message holding both `file` and `want`. */
static void refused(const char *dir, bool nchw, const char *file, const char *want)
{
    zn_dataset ds;
    char err[512] = "";
    if (load(dir, nchw, &ds, err)) fail_msg("accepted, wanted '%s'", want);
    if (!strstr(err, file) || !strstr(err, want)) fail_msg("wanted '%s' and '%s' in '%s'", file, want, err);
}

static void test_refusals_name_the_file(void **state)
{
    (void)state;
    uint8_t nhwc[36], nchw[36];
    two_images(nhwc, nchw);
    const char *dir = fresh_dir("bad");
    const uint8_t labels[2] = {1, 2}, big[2] = {1, 10}, three[3] = {1, 2, 3};
    float f[36] = {0};
    f[5] = 1.5f;
    refused(dir, false, "test_images.npy", "No such file");
    write_array(dir, "test_images.npy", "|u1", "(2, 2, 3, 3)", nhwc, sizeof nhwc);
    refused(dir, false, "test_labels.npy", "No such file");
    write_array(dir, "test_labels.npy", "|u1", "(3,)", three, sizeof three);
    refused(dir, false, "test_labels.npy", "3 labels for the 2 images");
    write_array(dir, "test_labels.npy", "|u1", "(2,)", big, sizeof big);
    refused(dir, false, "test_labels.npy", "label 10 of image 1 is out of range");
    write_array(dir, "test_labels.npy", "<f4", "(2,)", f, 8);
    refused(dir, false, "test_labels.npy", "must be integers");
    write_array(dir, "test_labels.npy", "|u1", "(2,)", labels, sizeof labels);
    write_array(dir, "test_images.npy", "<f4", "(2, 2, 3, 3)", f, sizeof f);
    refused(dir, false, "test_images.npy", "is 1.5, not in [0, 1]");
    write_array(dir, "test_images.npy", "<i4", "(2, 2, 3, 3)", f, sizeof f);
    refused(dir, false, "test_images.npy", "uint8 or float32, not int32");
    static const uint8_t planes[2 * 3 * 4 * 8];
    write_array(dir, "test_images.npy", "|u1", "(2, 3, 4, 8)", planes, sizeof planes); /* NCHW read as NHWC */
    refused(dir, false, "test_images.npy", "8 channels x 3 x 4 (as NHWC)");
    write_array(dir, "test_images.npy", "|u1", "(2, 2, 3, 3)", nhwc, sizeof nhwc - 1);
    refused(dir, false, "test_images.npy", "truncated");
    write_array(dir, "test_images.npy", "|u1", "(36,)", nhwc, sizeof nhwc);
    refused(dir, false, "test_images.npy", "must have 4 dimensions");
}

/* An .npz at path of the named members, deflated when compress, else stored. */
static void write_npz(const char *path, const char *const *names, uint8_t *const *bufs, const size_t *lens, int n,
                      bool compress)
{
    struct archive *ar = archive_write_new();
    assert_int_equal(archive_write_set_format_zip(ar), ARCHIVE_OK);
    assert_int_equal(archive_write_set_options(ar, compress ? "zip:compression=deflate" : "zip:compression=store"),
                     ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(ar, path), ARCHIVE_OK);
    for (int k = 0; k < n; k++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[k]);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)lens[k]);
        assert_int_equal(archive_write_header(ar, e), ARCHIVE_OK);
        assert_int_equal(archive_write_data(ar, bufs[k], lens[k]), (la_ssize_t)lens[k]);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(ar), ARCHIVE_OK);
    archive_write_free(ar);
}

static void test_npz(void **state)
{
    (void)state;
    uint8_t nhwc[36], nchw[36];
    two_images(nhwc, nchw);
    const uint8_t labels[2] = {4, 5};
    const char *names[] = {"test_images.npy", "test_labels.npy"};
    uint8_t *bufs[2];
    size_t lens[2];
    bufs[0] = array_bytes("|u1", "(2, 2, 3, 3)", nhwc, sizeof nhwc, &lens[0]);
    bufs[1] = array_bytes("|u1", "(2,)", labels, sizeof labels, &lens[1]);
    char path[4096], err[512] = "";
    zn_dataset ds;
    for (int compress = 0; compress < 2; compress++) {
        snprintf(path, sizeof path, "%s/arrays%d.npz", zt_tmpdir(), compress);
        write_npz(path, names, bufs, lens, 2, compress);
        assert_true(load(path, false, &ds, err));
        assert_memory_equal(ds.images, nchw, 36);
        assert_int_equal(ds.labels[1], 5);
        zn_dataset_free(&ds);
    }
    write_npz(path, names, bufs, lens, 1, true);
    assert_false(load(path, false, &ds, err));
    assert_non_null(strstr(err, "no member test_labels.npy"));
    lens[1] -= 1; /* a member cut short names the archive and the member */
    write_npz(path, names, bufs, lens, 2, false);
    assert_false(load(path, false, &ds, err));
    assert_non_null(strstr(err, "[test_labels.npy]: truncated"));
    put_file(path, (const uint8_t *)"not a zip at all", 16);
    assert_false(load(path, false, &ds, err));
    assert_non_null(strstr(err, "not a readable .npz"));
    free(bufs[0]);
    free(bufs[1]);
}

/* ---- real CIFAR-10 as arrays ----------------------------------------------------------------- */

#define CIFAR_N 1000 /* test images written out: enough for an accuracy, quick to write */

static const zn_setting cifar_sets[] = {{"width", "4"}, {"train.batch", "32"}, {"train.lr", "0.02"},
                                        {"train.epochs", "1"}, {"train.mean", "[125.31, 122.95, 113.87]"},
                                        {"train.std", "[62.99, 62.09, 66.70]"}, {"train.data", NULL}};

/* davidnet (width 4) with the CIFAR normalisation on `data` (a train.data value, or NULL). */
static void load_model(const char *data, zn_graph *g, zn_recipe *r)
{
    zn_setting sets[7];
    memcpy(sets, cifar_sets, sizeof sets);
    sets[6].value = data;
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_load_opts o = {.path = zt_src_path("models/davidnet.znet"), .settings = sets, .n_settings = data ? 7 : 6};
    assert_true(zn_program_load(&o, &d, g, r));
    zn_diag_free(&d);
}

/* `znet eval` of the checkpoint on `data` from data_dir: its printed lines after the first (which
 * names the data set), each from column 12 on (past a confusion-matrix row's class name). */
static char *eval_lines(const char *data, const char *data_dir, const char *ckpt)
{
    zn_graph g;
    zn_recipe r;
    load_model(data, &g, &r);
    zn_run_opts o = {.data_dir = data_dir, .test_limit = CIFAR_N, .backend = &zn_cpu_backend,
                     .backend_opts = {.threads = 1}};
    FILE *cap = tmpfile();
    assert_non_null(cap);
    fflush(stdout);
    int saved = dup(1);
    assert_true(dup2(fileno(cap), 1) >= 0);
    int rc = zn_train_eval(&g, &r, &o, ckpt);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    zn_graph_free(&g);
    assert_int_equal(rc, 0);
    char *all = zt_read_all(cap);
    fclose(cap);
    char *out = calloc(strlen(all) + 1, 1);
    assert_non_null(out);
    char *line = strchr(all, '\n');
    assert_non_null(line);
    for (line++; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 12) strncat(out, line + 12, len - 12);
        strcat(out, "\n");
        line += len + (end != NULL);
    }
    free(all);
    assert_non_null(strstr(out, "accuracy"));
    return out;
}

static void test_cifar_as_arrays(void **state)
{
    (void)state;
    const char *cifar = zt_cifar_dir();
    if (!cifar) {
        print_message("skipped: no CIFAR-10 (set ZNET_TEST_CIFAR or put it in ../shared/data)\n");
        skip();
    }
    zn_dataset ref, ds;
    char err[512] = "";
    assert_true(zn_cifar10_load(cifar, false, &ref, err, sizeof err));
    const size_t chw = 3 * 32 * 32;
    uint8_t *nhwc = malloc(CIFAR_N * chw);
    int64_t *labels = malloc(CIFAR_N * sizeof *labels);
    assert_non_null(nhwc);
    assert_non_null(labels);
    for (size_t i = 0; i < CIFAR_N * chw; i++) /* i indexes [n][c][h][w] */
        nhwc[i / chw * chw + i % 1024 * 3 + i % chw / 1024] = ref.images[i];
    for (int i = 0; i < CIFAR_N; i++) labels[i] = ref.labels[i];

    const char *dir = fresh_dir("cifar_npy");
    const char *names[] = {"test_images.npy", "test_labels.npy"};
    uint8_t *bufs[2];
    size_t lens[2];
    bufs[0] = array_bytes("|u1", "(1000, 32, 32, 3)", nhwc, CIFAR_N * chw, &lens[0]);
    bufs[1] = array_bytes("<i8", "(1000,)", labels, CIFAR_N * sizeof *labels, &lens[1]);
    char path[8192], npz[4096];
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        put_file(path, bufs[k], lens[k]);
    }
    snprintf(npz, sizeof npz, "%s/cifar_test.npz", zt_tmpdir());
    write_npz(npz, names, bufs, lens, 2, true);
    const char *sources[] = {dir, npz};
    for (int s = 0; s < 2; s++) {
        assert_true(zn_npy_load(sources[s], false, false, 10, &ds, err, sizeof err));
        assert_int_equal(ds.n, CIFAR_N);
        assert_memory_equal(ds.images, ref.images, CIFAR_N * chw);
        assert_memory_equal(ds.labels, ref.labels, CIFAR_N);
        zn_dataset_free(&ds);
    }

    /* a checkpoint trained a few steps on the binary; its evaluation from each source */
    zn_graph g;
    zn_recipe r;
    load_model(NULL, &g, &r);
    const char *ckpt = zt_write_file("cifar.ckpt", "");
    zn_run_opts o = {.data_dir = cifar, .save_path = ckpt, .limit = 2048, .test_limit = 64,
                     .backend = &zn_cpu_backend, .backend_opts = {.threads = 1}};
    assert_int_equal(zn_train_run(&g, &r, &o), 0);
    zn_graph_free(&g);
    char *binary = eval_lines(NULL, cifar, ckpt);
    char *from_dir = eval_lines("npy(layout = \"nhwc\")", dir, ckpt);
    char *from_npz = eval_lines("npy()", npz, ckpt);
    print_message("from the binary, the .npy folder and the .npz:\n%s", binary);
    assert_string_equal(from_dir, binary);
    assert_string_equal(from_npz, binary);
    free(binary), free(from_dir), free(from_npz);
    free(bufs[0]), free(bufs[1]), free(nhwc), free(labels);
    zn_dataset_free(&ref);
}

/* data = npy(...) in a recipe: its values checked at the setting, carried into the recipe. */
static void test_recipe_setting(void **state)
{
    (void)state;
    static const char *const bad[] = {"npy(layout = \"nwhc\")", "npy(classes = 17)", "npy(classes = 0)", "npy(3)"};
    for (int i = 0; i < 4; i++) {
        const zn_setting sets[] = {{"train.data", bad[i]}};
        zn_graph g;
        zn_recipe r;
        zn_diag d;
        zn_diag_init(&d, stderr);
        zn_load_opts o = {.path = zt_src_path("models/davidnet.znet"), .settings = sets, .n_settings = 1};
        if (zn_program_load(&o, &d, &g, &r)) fail_msg("accepted train.data=%s", bad[i]);
        zn_graph_free(&g); /* partial after a failed load, and still ours to free */
        zn_diag_free(&d);
    }
    zn_graph g;
    zn_recipe r;
    load_model("npy(\"arrays.npz\", layout = \"nchw\", classes = 4)", &g, &r);
    assert_string_equal(r.data, "npy");
    assert_string_equal(r.npy.path, "arrays.npz");
    assert_true(r.npy.nchw);
    assert_int_equal(r.npy.classes, 4);
    zn_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_strict),
        cmocka_unit_test(test_layouts_and_dtypes),
        cmocka_unit_test(test_refusals_name_the_file),
        cmocka_unit_test(test_npz),
        cmocka_unit_test(test_recipe_setting),
        cmocka_unit_test(test_cifar_as_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
