/* support.c: see support.h. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/passes.h"

const char *zt_src_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("ZNET_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ZNET_SOURCE_DIR, rel);
    return buf;
}

const char *zt_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/znet-test-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

const char *zt_write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", zt_tmpdir(), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

char *zt_read_all(FILE *f)
{
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    return s;
}

const char *zt_cifar_dir(void)
{
    static char buf[4096];
    const char *env = getenv("ZNET_TEST_CIFAR");
    if (env && *env) return env;
    snprintf(buf, sizeof buf, "%s", zt_src_path("../shared/data/cifar-10-batches-bin"));
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

int zt_each_model(void (*fn)(const char *rel, void *ctx), void *ctx)
{
    DIR *dir = opendir(zt_src_path("models"));
    assert_non_null(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".znet") != 0) continue;
        char rel[300];
        snprintf(rel, sizeof rel, "models/%s", e->d_name);
        fn(rel, ctx);
        n++;
    }
    closedir(dir);
    return n;
}

static uint64_t rng_state;

void zt_load(const char *path, const zn_setting *sets, int n, zn_graph *g)
{
    /* The sources own the file names in the graph's spans (DOT and error messages read them
     * after loading), so they live as long as the test process: one source table for all loads,
     * never freed (it stays reachable, so LeakSanitizer does not count it). */
    static zn_diag d;
    if (!d.out) zn_diag_init(&d, stderr);
    zn_recipe r;
    zn_load_opts o = {.path = path, .settings = sets, .n_settings = n};
    if (!zn_program_load(&o, &d, g, &r)) fail_msg("%s does not load", path);
}

void zt_run_passes(zn_graph *g, const char *const *disabled, int n_disabled)
{
    char err[512];
    if (!zn_passes_run(g, disabled, n_disabled, NULL, err, sizeof err)) fail_msg("passes: %s", err);
}

int zt_count_op(const zn_graph *g, zn_op op)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
    return n;
}

int zt_count_flag(const zn_graph *g, unsigned flag)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += (g->nodes[i].flags & flag) != 0;
    return n;
}

int zt_count_suffix(const zn_graph *g, const char *suffix)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        size_t a = strlen(g->nodes[i].name), b = strlen(suffix);
        n += a > b && strcmp(g->nodes[i].name + a - b, suffix) == 0;
    }
    return n;
}

void zt_rng_seed(uint64_t seed) { rng_state = seed; }

double zt_rng_unit(void) /* splitmix64 -> [0, 1) */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

static void *scratch[512];
static int n_scratch;

float *zt_talloc(size_t n)
{
    assert_true(n_scratch < 512);
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return scratch[n_scratch++] = p;
}

void zt_scratch_free(void)
{
    while (n_scratch) free(scratch[--n_scratch]);
}
