/* test_image_folder.c: image folders (data/image_folder.c, data/image_decode.c). CIFAR-10 test
 * images written as a PNG folder read back to the CIFAR binary's bytes (synthetic images when
 * CIFAR-10 is absent), and with CIFAR-10 a checkpoint evaluates to the same output from both;
 * gray <-> RGB, resize and centre crop on images whose right answer holds exactly; JPEG; and
 * each refusal (corrupt file, empty class, missing split, class lists that differ) by name. */
#include "support.h"

#include <png.h>
#include <stdio.h> /* before jpeglib.h */
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/image_decode.h"
#include "lang/program.h"
#include "runtime/train.h"

enum { N_IMAGES = 200 };

static const char *tmp(const char *fmt, const char *a, const char *b)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    int n = snprintf(buf[k], sizeof buf[k], "%s/", zt_tmpdir());
    snprintf(buf[k] + n, sizeof buf[k] - n, fmt, a, b);
    return buf[k];
}

static void write_png(const char *path, int c, int h, int w, const uint8_t *hwc)
{
    png_image png = {.version = PNG_IMAGE_VERSION, .width = w, .height = h,
                     .format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB};
    assert_true(png_image_write_to_file(&png, path, 0, hwc, 0, NULL));
}

static void write_jpeg(const char *path, int h, int w, const uint8_t *gray)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = w, cinfo.image_height = h, cinfo.input_components = 1, cinfo.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    for (int y = 0; y < h; y++) {
        JSAMPROW row = (JSAMPROW)(gray + (size_t)y * w);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
}

/* root (a full path)/{train,test}/cls */
static void make_dirs(const char *root, const char *cls)
{
    mkdir(root, 0755);
    for (int s = 0; s < 2; s++) {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", root, s ? "test" : "train");
        mkdir(d, 0755);
        snprintf(d, sizeof d, "%s/%s/%s", root, s ? "test" : "train", cls);
        mkdir(d, 0755);
    }
}

/* The source images: the first N_IMAGES of CIFAR-10's test batch, else synthetic ones (a colour
 * per class and noise) in a batch file of the same record format. */
static bool source_images(zn_dataset *src)
{
    const char *dir = zt_cifar_dir();
    char path[1024], err[512];
    if (dir) {
        snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    } else {
        snprintf(path, sizeof path, "%s", tmp("synthetic.bin", "", ""));
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        for (int i = 0; i < N_IMAGES; i++) {
            fputc(i % 10, f);
            for (int k = 0; k < 3072; k++) fputc((i % 10) * 20 + k / 1024 * 30 + (int)(zt_rng_unit() * 40), f);
        }
        fclose(f);
    }
    const char *paths[] = {path};
    if (!zn_cifar10_load_files(paths, 1, src, err, sizeof err)) fail_msg("%s", err);
    src->n = N_IMAGES;
    return dir != NULL;
}

/* Writes src's images into root/{train,test}/<class name>/<index>.png (both splits the same). */
static void write_folder(const char *root, const zn_dataset *src)
{
    for (int k = 0; k < src->n_classes; k++) make_dirs(root, src->class_names[k]);
    uint8_t hwc[3 * 32 * 32];
    for (int i = 0; i < src->n; i++) {
        const uint8_t *chw = src->images + (size_t)i * 3072;
        for (int p = 0; p < 1024; p++)
            for (int ch = 0; ch < 3; ch++) hwc[p * 3 + ch] = chw[ch * 1024 + p];
        for (int s = 0; s < 2; s++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s/%s/%05d.png", root, s ? "test" : "train",
                     src->class_names[src->labels[i]], i);
            write_png(path, 3, 32, 32, hwc);
        }
    }
}

static void load(const char *root, bool train, int c, int h, int w, zn_image_fit fit, zn_dataset *ds)
{
    char err[1024] = "";
    if (!zn_image_folder_load(root, train, c, h, w, fit, ds, err, sizeof err)) fail_msg("%s", err);
}

/* The folder holds the images by class, each class by index: every one equals its source. */
static void test_png_folder_reads_back_the_cifar_bytes(void **state)
{
    (void)state;
    zn_dataset src, ds;
    source_images(&src);
    const char *root = tmp("cifar_png", "", "");
    write_folder(root, &src);
    load(root, false, 3, 32, 32, ZN_FIT_RESIZE, &ds);
    assert_int_equal(ds.n, N_IMAGES);
    assert_int_equal(ds.n_classes, 10);
    for (int k = 0; k < 10; k++) assert_string_equal(ds.class_names[k], src.class_names[k]);
    int j = 0;
    for (int k = 0; k < 10; k++)
        for (int i = 0; i < src.n; i++)
            if (src.labels[i] == k) {
                assert_int_equal(ds.labels[j], k);
                assert_memory_equal(ds.images + (size_t)j * 3072, src.images + (size_t)i * 3072, 3072);
                j++;
            }
    assert_int_equal(j, N_IMAGES);
    zn_dataset_free(&ds);
    zn_dataset_free(&src);
}

static bool load_model(zn_graph *g, zn_recipe *r, const char *data)
{
    const zn_setting sets[] = {{"width", "2"}, {"train.batch", "40"}, {"train.epochs", "1"}, {"train.data", data},
                               {"train.mean", "[125.31, 122.95, 113.87]"}, {"train.std", "[62.99, 62.09, 66.70]"}};
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_load_opts o = {.path = zt_src_path("models/davidnet_zee.znet"), .settings = sets, .n_settings = 6};
    bool ok = zn_program_load(&o, &d, g, r);
    zn_diag_free(&d);
    return ok;
}

/* zn_train_eval's standard output (its accuracies and confusion matrix) into out. */
static void eval_to(const char *data, const char *dir, const char *ckpt, const char *out)
{
    zn_graph g;
    zn_recipe r;
    assert_true(load_model(&g, &r, data));
    zn_run_opts o = {.data_dir = dir, .test_limit = N_IMAGES, .backend = &zn_cpu_backend, .backend_opts = {.threads = 1}};
    fflush(stdout);
    int saved = dup(1);
    FILE *f = freopen(out, "w", stdout);
    assert_non_null(f);
    int rc = zn_train_eval(&g, &r, &o, ckpt);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc, 0);
    zn_graph_free(&g);
}

/* A model trained a few steps on the folder evaluates to the same accuracies and confusion matrix
 * from the CIFAR-10 binary and from its PNG folder. */
static void test_same_evaluation_from_binary_and_folder(void **state)
{
    (void)state;
    zn_dataset src;
    if (!source_images(&src)) {
        zn_dataset_free(&src);
        print_message("skip: no CIFAR-10 (ZNET_TEST_CIFAR or ../shared/data): \"cifar10\" reads whole batch files\n");
        skip();
    }
    const char *root = tmp("eval_png", "", "");
    write_folder(root, &src);
    zn_dataset_free(&src);
    zn_graph g;
    zn_recipe r;
    assert_true(load_model(&g, &r, "folder()"));
    const char *ckpt = tmp("folder.ckpt", "", "");
    zn_run_opts o = {.data_dir = root, .save_path = ckpt, .backend = &zn_cpu_backend, .backend_opts = {.threads = 1}};
    assert_int_equal(zn_train_run(&g, &r, &o), 0);
    zn_graph_free(&g);
    const char *a = tmp("eval_bin.txt", "", ""), *b = tmp("eval_png.txt", "", "");
    eval_to("\"cifar10\"", zt_cifar_dir(), ckpt, a);
    eval_to("folder()", root, ckpt, b);
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    char *ta = zt_read_all(fa), *tb = zt_read_all(fb);
    fclose(fa);
    fclose(fb);
    /* the first line names the data set ("cifar10" or "folder"); the rest must be the same */
    assert_non_null(strstr(ta, "airplane"));
    assert_non_null(strchr(ta, '\n'));
    assert_non_null(strchr(tb, '\n'));
    assert_string_equal(strchr(ta, '\n'), strchr(tb, '\n'));
    free(ta);
    free(tb);
}

/* One class "a" in both splits holding the image img.png (HWC) written by the caller. */
static const char *one_image_folder(const char *name, int c, int h, int w, const uint8_t *hwc)
{
    const char *root = tmp("%s", name, "");
    make_dirs(root, "a");
    write_png(tmp("%s/train/a/img.png", name, ""), c, h, w, hwc);
    write_png(tmp("%s/test/a/img.png", name, ""), c, h, w, hwc);
    return root;
}

/* Gray repeated into RGB and RGB averaged to gray: constant images, where the answer is exact. */
static void test_channels_convert(void **state)
{
    (void)state;
    uint8_t gray[16 * 16], rgb[16 * 16 * 3];
    memset(gray, 90, sizeof gray);
    for (int p = 0; p < 16 * 16; p++) rgb[3 * p] = 100, rgb[3 * p + 1] = 200, rgb[3 * p + 2] = 0;
    zn_dataset ds;
    load(one_image_folder("gray", 1, 16, 16, gray), true, 3, 16, 16, ZN_FIT_RESIZE, &ds);
    for (int i = 0; i < 3 * 16 * 16; i++) assert_int_equal(ds.images[i], 90);
    zn_dataset_free(&ds);
    load(one_image_folder("rgb", 3, 16, 16, rgb), false, 1, 16, 16, ZN_FIT_RESIZE, &ds);
    for (int i = 0; i < 16 * 16; i++) assert_int_equal(ds.images[i], 147); /* .299 * 100 + .587 * 200 */
    zn_dataset_free(&ds);
}

/* A 32 x 64 image, 0 in its outer quarters and 200 in the middle half: crop to 16 x 16 takes the
 * middle half at half scale (all 200); resize keeps the whole width, dark at both sides. */
static void test_resize_and_crop(void **state)
{
    (void)state;
    uint8_t img[32 * 64];
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 64; x++) img[y * 64 + x] = x >= 16 && x < 48 ? 200 : 0;
    const char *root = one_image_folder("wide", 1, 32, 64, img);
    zn_dataset ds;
    load(root, true, 1, 16, 16, ZN_FIT_CROP, &ds);
    for (int i = 0; i < 16 * 16; i++) assert_int_equal(ds.images[i], 200);
    zn_dataset_free(&ds);
    load(root, true, 1, 16, 16, ZN_FIT_RESIZE, &ds);
    for (int y = 0; y < 16; y++) {
        assert_int_equal(ds.images[y * 16 + 0], 0);
        assert_int_equal(ds.images[y * 16 + 8], 200);
        assert_int_equal(ds.images[y * 16 + 15], 0);
    }
    zn_dataset_free(&ds);
}

/* A JPEG decodes (gray, lossy: within a few levels of a flat image) beside PNGs in one class. */
static void test_jpeg(void **state)
{
    (void)state;
    uint8_t gray[24 * 24];
    memset(gray, 120, sizeof gray);
    const char *root = one_image_folder("jpeg", 1, 24, 24, gray);
    write_jpeg(tmp("%s/test/a/%s", "jpeg", "img2.JPG"), 24, 24, gray);
    zn_dataset ds;
    load(root, false, 1, 24, 24, ZN_FIT_RESIZE, &ds);
    assert_int_equal(ds.n, 2);
    for (int i = 0; i < 2 * 24 * 24; i++) assert_in_range(ds.images[i], 118, 122);
    zn_dataset_free(&ds);
}

static void refused(const char *root, bool train, const char *want1, const char *want2)
{
    zn_dataset ds;
    char err[1024] = "";
    assert_false(zn_image_folder_load(root, train, 1, 8, 8, ZN_FIT_RESIZE, &ds, err, sizeof err));
    if (!strstr(err, want1) || !strstr(err, want2)) fail_msg("message '%s' lacks '%s' or '%s'", err, want1, want2);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(p, 1, n, f);
    fclose(f);
}

/* Each bad folder is refused naming the file or folder and what is wrong with it. */
static void test_refusals(void **state)
{
    (void)state;
    uint8_t img[8 * 8];
    memset(img, 7, sizeof img);
    refused(tmp("nothing", "", ""), true, "nothing/train: no such folder", "one subfolder of images per class");

    char root[1024]; /* tmp's buffers are reused */
    snprintf(root, sizeof root, "%s", one_image_folder("bad", 1, 8, 8, img));
    /* a PNG cut short, a JPEG signature and then nothing, a file that is neither */
    FILE *f = fopen(tmp("bad/train/a/img.png", "", ""), "rb");
    uint8_t head[60];
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    write_bytes(tmp("bad/train/a/img.png", "", ""), head, sizeof head);
    refused(root, true, "bad/train/a/img.png: corrupt PNG", "");
    write_bytes(tmp("bad/train/a/img.png", "", ""), "\xff\xd8\xff\xe0", 4);
    refused(root, true, "bad/train/a/img.png: corrupt JPEG", "");
    write_bytes(tmp("bad/train/a/img.png", "", ""), "GIF89a", 6);
    refused(root, true, "bad/train/a/img.png: neither a PNG nor a JPEG", "");

    /* a class folder with no images (other files do not count), and no class folders at all */
    unlink(tmp("bad/train/a/img.png", "", ""));
    write_bytes(tmp("bad/train/a/notes.txt", "", ""), "x", 1);
    refused(root, true, "bad/train/a: class folder with no images", "");
    unlink(tmp("bad/train/a/notes.txt", "", ""));
    rmdir(tmp("bad/train/a", "", ""));
    refused(root, true, "bad/train has no class subfolders", "");

    /* test/ with classes train/ lacks */
    make_dirs(root, "b");
    write_png(tmp("bad/train/b/x.png", "", ""), 1, 8, 8, img);
    refused(root, false, "bad/test: its class subfolders differ from train/'s", "class 0 is 'a' in test/, 'b' in train/");
    rmdir(tmp("bad/test/b", "", ""));
    unlink(tmp("bad/test/a/img.png", "", ""));
    rmdir(tmp("bad/test/a", "", ""));
    rmdir(tmp("bad/test", "", ""));
    refused(root, false, "bad/test: no such folder", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_folder_reads_back_the_cifar_bytes),
        cmocka_unit_test(test_same_evaluation_from_binary_and_folder),
        cmocka_unit_test(test_channels_convert),
        cmocka_unit_test(test_resize_and_crop),
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
