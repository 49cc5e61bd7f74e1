/* test_cuda_algo_file.c: what of the CUDA backend's speed settings a machine without a GPU can
 * check: the cuDNN algorithm cache file (written entries read back equal; a damaged file is
 * refused with its name and line, whatever the damage; a missing file is an empty cache) and the
 * environment settings (ZNET_CUDA_GRAPH, ZNET_CUDNN_CACHE: defaults, off, bad values named). */
#include "support.h"

#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_algo_file.h"
#include "graph/op_list.h"

static zn_cuda_algo_entry entry(int op, int n, int algo)
{
    zn_cuda_algo_entry e;
    memset(&e, 0, sizeof e);
    strcpy(e.device, "NVIDIA_H100/sm90/cudnn91900/cudart13000");
    e.key = (zn_cuda_conv_key){.op = op, .dtype = 2, .n = n, .c = 64, .h = 32, .w = 32, .o = 128,
                               .kh = 3, .kw = 3, .oh = 32, .ow = 32, .stride = {1, 1},
                               .pad = {1, 1}, .dilation = {1, 1}, .groups = 1, .fused = 1};
    e.deterministic = 0;
    e.algo = algo;
    e.math = 1;
    e.workspace = (size_t)5 << 30; /* beyond 32 bits */
    return e;
}

static void test_written_entries_read_back(void **state)
{
    (void)state;
    zn_cuda_algo_file f = {0}, g = {0};
    zn_cuda_algo_entry a = entry(ZN_OP_CONV2D, 512, 1), b = entry(ZN_OP_CONV2D_BWD_FILTER, 51, 3);
    assert_true(zn_cuda_algo_file_put(&f, &a));
    assert_true(zn_cuda_algo_file_put(&f, &b));
    b.algo = 5; /* the same shape again replaces */
    assert_true(zn_cuda_algo_file_put(&f, &b));
    assert_int_equal(f.n, 2);
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/cache/deeper/algos.txt", zt_tmpdir());
    assert_true(zn_cuda_algo_file_write(&f, path, err, sizeof err));
    assert_true(zn_cuda_algo_file_read(&g, path, err, sizeof err));
    assert_int_equal(g.n, 2);
    assert_false(g.dirty);
    const zn_cuda_algo_entry *r = zn_cuda_algo_file_find(&g, b.device, &b.key, 0);
    assert_non_null(r);
    assert_memory_equal(r, &b, sizeof b);
    assert_null(zn_cuda_algo_file_find(&g, b.device, &b.key, 1));      /* deterministic apart */
    assert_null(zn_cuda_algo_file_find(&g, "other_gpu", &b.key, 0));   /* another device */
    zn_cuda_algo_file_free(&f);
    zn_cuda_algo_file_free(&g);
}

static void test_missing_file_is_empty(void **state)
{
    (void)state;
    zn_cuda_algo_file f = {0};
    char err[512] = "";
    assert_true(zn_cuda_algo_file_read(&f, "/nonexistent/znet/algos.txt", err, sizeof err));
    assert_int_equal(f.n, 0);
}

#define HEAD "# znet cuDNN algorithm cache, version 1\n"
/* A good entry line; '@' stands for the conv2d op's number in every case below. */
#define GOOD "gpu/sm90 @ 2 512 64 32 32 128 3 3 32 32 1 1 1 1 1 1 1 0 0 1 1 4096\n"

/* body with every '@' replaced by ZN_OP_CONV2D's number. */
static void with_op(const char *body, char *out, size_t len)
{
    size_t at = 0;
    for (; *body && at + 8 < len; body++)
        at += *body == '@' ? (size_t)snprintf(out + at, len - at, "%d", ZN_OP_CONV2D)
                           : (size_t)snprintf(out + at, len - at, "%c", *body);
    out[at] = 0;
}

/* Each damaged file is refused, naming the file, the line and the fault; nothing is kept. */
static void test_damaged_files_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *body, *want;
        int line;
    } cases[] = {
        {"garbage\n", "not a znet algorithm cache", 1},
        {"# znet cuDNN algorithm cache, version 2\n" GOOD, "not a znet algorithm cache", 1},
        {HEAD GOOD "gpu 1 2 3\n", "numbers after the device tag", 3},
        {HEAD GOOD "gpu/sm90 @ 2 512 64 32 32 128 3 3 32 32 1 1 1 1 1 1 1 0 0 9 1 4096\n",
         "outside 0..7", 3},
        {HEAD "gpu @ 2 512 64 32 32 128 3 3 32 32 1 1 1 1 1 1 1 0 0 1 1 4096 7\n", "more than", 2},
        {HEAD "gpu @ 2 512 64 32 32 128 3 3 32 32 0 1 1 1 1 1 1 0 0 1 1 4096\n", "outside 1..", 2},
        {HEAD "gpu @ 2 -512 64 32 32 128 3 3 32 32 1 1 1 1 1 1 1 0 0 1 1 4096\n",
         "not a whole number", 2},
        {HEAD "gpu @ 2 512 64 32 32 128 3 3 32 32 1 1 1 1 1 1 3 0 0 1 1 4096\n", "groups", 2},
        {HEAD "gpu @ 2 512 64 32 32 128 3 3 32 32 1 1 1 1 1 1 1 0 0 1 1 99999999999999999999\n",
         "not a whole number", 2},
        {HEAD "gpu @ 2 512 64 32 32 128 3 3 32 32 1 1 1 1 1 1 1 0 0 1 1 40x6\n",
         "not a whole number", 2},
        {HEAD GOOD GOOD, "a second entry", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[1024], want[64], name[32];
        with_op(cases[i].body, body, sizeof body);
        snprintf(name, sizeof name, "damaged%zu.txt", i);
        const char *path = zt_write_file(name, body);
        zn_cuda_algo_file f = {0};
        char err[512] = "";
        assert_false(zn_cuda_algo_file_read(&f, path, err, sizeof err));
        assert_int_equal(f.n, 0);
        snprintf(want, sizeof want, "%s:%d: ", name, cases[i].line);
        if (!strstr(err, want) || !strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s' or '%s'", i, err, want, cases[i].want);
    }
    /* the good line alone is accepted: the refusals above are the damage, not the format */
    char body[256];
    with_op(HEAD GOOD, body, sizeof body);
    zn_cuda_algo_file f = {0};
    char err[512] = "";
    assert_true(zn_cuda_algo_file_read(&f, zt_write_file("good.txt", body), err, sizeof err));
    assert_int_equal(f.n, 1);
    assert_int_equal(f.entries[0].workspace, 4096);
    zn_cuda_algo_file_free(&f);
}

static void test_device_tag_has_no_blanks(void **state)
{
    (void)state;
    char tag[128];
    zn_cuda_algo_device_tag(tag, sizeof tag, "NVIDIA H100 80GB/HBM3", 9, 0, 91900, 13000);
    assert_string_equal(tag, "NVIDIA_H100_80GB_HBM3/sm90/cudnn91900/cudart13000");
}

static void test_settings(void **state)
{
    (void)state;
    zn_cuda_settings s;
    char err[512] = "";
    assert_true(zn_cuda_settings_parse(&s, NULL, NULL, NULL, "/home/u", err, sizeof err));
    assert_true(s.graphs);
    assert_string_equal(s.cache, "/home/u/.cache/znet/cudnn-algos.txt");
    assert_true(zn_cuda_settings_parse(&s, "off", NULL, "/xdg", "/home/u", err, sizeof err));
    assert_false(s.graphs);
    assert_string_equal(s.cache, "/xdg/znet/cudnn-algos.txt");
    assert_true(zn_cuda_settings_parse(&s, "on", "off", "/xdg", "/home/u", err, sizeof err));
    assert_true(s.graphs);
    assert_string_equal(s.cache, "");
    assert_true(zn_cuda_settings_parse(&s, "0", "/tmp/a.txt", NULL, NULL, err, sizeof err));
    assert_false(s.graphs);
    assert_string_equal(s.cache, "/tmp/a.txt");
    assert_true(zn_cuda_settings_parse(&s, NULL, NULL, NULL, NULL, err, sizeof err));
    assert_string_equal(s.cache, "");
    assert_false(zn_cuda_settings_parse(&s, "maybe", NULL, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "ZNET_CUDA_GRAPH=maybe: expected on or off"));
    assert_false(zn_cuda_settings_parse(&s, NULL, "", NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "ZNET_CUDNN_CACHE="));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_written_entries_read_back),
        cmocka_unit_test(test_missing_file_is_empty),
        cmocka_unit_test(test_damaged_files_are_refused),
        cmocka_unit_test(test_device_tag_has_no_blanks),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
