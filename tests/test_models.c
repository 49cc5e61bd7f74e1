/* test_models.c: every model in models/: its parameter count against the figures of
 * ../shared/spec (the original experiment) or counted by hand, the squeeze-and-excitation
 * model's gate shapes, and 20 training steps on one fixed batch on the CPU backend, after which
 * the loss must have fallen; and the README and docs/language.md quoting
 * models/davidnet_zee.znet as it is written. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/inspect.h"
#include "lang/program.h"
#include "data/rng.h"
#include "runtime/session.h"

static void load(const char *rel, const zn_setting *sets, int n, zn_graph *g, zn_recipe *r)
{
    zn_diag d;
    zn_diag_init(&d, stderr);
    zn_load_opts o = {.path = zt_src_path(rel), .settings = sets, .n_settings = n};
    if (!zn_program_load(&o, &d, g, r)) fail_msg("%s does not load", rel);
    zn_diag_free(&d);
}

/* Trainable parameters of the nodes whose names start with one of the prefixes ("prep", "b1.") */
static int64_t params_under(const zn_graph *g, const char *const *prefixes, int n)
{
    int64_t total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const zn_node *node = &g->nodes[i];
        if (!(node->flags & ZN_NODE_PARAM)) continue;
        for (int k = 0; k < n; k++)
            if (strncmp(node->name, prefixes[k], strlen(prefixes[k])) == 0) total += zn_shape_numel(&node->shape);
    }
    return total;
}

typedef struct {
    const char *file;
    zn_setting sets[4];
    int n_sets;
    int64_t params;   /* whole model */
    int64_t backbone; /* prep + b1 + b2 + b3, or 0 when not checked */
} count_case;

static const count_case counts[] = {
    {"models/davidnet.znet", {{0}}, 0, 6573120, 0},
    {"models/davidnet.znet", {{"width", "16"}}, 1, 412944, 0},
    {"models/davidnet_multisoft.znet", {{0}}, 0, 7757632, 7748672},
    {"models/davidnet_multisoft.znet", {{"width", "16"}}, 1, 0, 485648},
    {"models/davidnet_zee.znet", {{0}}, 0, 7758464, 7748672},
    {"models/davidnet_zee.znet", {{"pool", "\"channel_axis\""}, {"filters", "[64]"}}, 2, 7776448, 0},
    {"models/davidnet_zee.znet", {{"width", "16"}, {"filters", "[64, 128]"}}, 2, 570448, 485648},
    {"models/davidnet_zee.znet",
     {{"width", "16"}, {"pool", "\"channel_axis\""}, {"roots", "true"}, {"filters", "[8, 16]"}}, 4, 501584, 0},
    {"models/davidnet_zee_single.znet", {{0}}, 0, 7752592, 0},
    /* DavidNet plus gates on layers 1 (C 128, C/r 8) and 3 (512, 32), each two linears with
     * biases: 128*8+8 + 8*128+128 + 512*32+32 + 32*512+512 = 35,496; at width 16 (32 and 128
     * channels, C/r 2 and 8): 162 + 2,184 = 2,346 */
    {"models/davidnet_se.znet", {{0}}, 0, 6573120 + 35496, 0},
    {"models/davidnet_se.znet", {{"width", "16"}}, 1, 412944 + 2346, 0},
};

static void test_parameter_counts(void **state)
{
    (void)state;
    static const char *const backbone[] = {"prep.", "b1.", "b2.", "b3."};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        const count_case *c = &counts[i];
        zn_graph g;
        zn_recipe r;
        load(c->file, c->sets, c->n_sets, &g, &r);
        if (c->params && zn_graph_param_count(&g) != c->params)
            fail_msg("%s case %zu: %lld parameters, the spec says %lld", c->file, i,
                     (long long)zn_graph_param_count(&g), (long long)c->params);
        if (c->backbone && params_under(&g, backbone, 4) != c->backbone)
            fail_msg("%s case %zu: backbone %lld, the spec says %lld", c->file, i,
                     (long long)params_under(&g, backbone, 4), (long long)c->backbone);
        zn_graph_free(&g);
    }
}

/* The node named `name` has per-example shape `want` (zn_shape_str without the batch). */
static void expect_shape(const zn_graph *g, const char *name, const char *want)
{
    char got[96];
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0) {
            if (strcmp(zn_shape_str(&g->nodes[i].shape, got, sizeof got), want) != 0)
                fail_msg("%s is %s, not %s", name, got, want);
            return;
        }
    fail_msg("no node %s", name);
}

/* The squeeze-and-excitation gates of models/davidnet_se.znet: squeezed to C/r, excited back to
 * one weight per channel, which scales the branch's map. */
static void test_se_shapes(void **state)
{
    (void)state;
    zn_graph g;
    zn_recipe r;
    load("models/davidnet_se.znet", NULL, 0, &g, &r);
    static const char *const want[][2] = {
        {"l1.se.gate.gap", "[N, 128]"}, {"l1.se.gate.linear", "[N, 8]"},
        {"l1.se.gate", "[N, 128]"},     {"l1.se", "[N, 128, 16, 16]"},
        {"l1", "[N, 128, 16, 16]"},     {"l3.se.gate.linear", "[N, 32]"},
        {"l3.se.gate", "[N, 512]"},     {"l3", "[N, 512, 4, 4]"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) expect_shape(&g, want[i][0], want[i][1]);
    zn_graph_free(&g);
}

/* 20 SGD steps on one random batch: the loss of the last step is below the first's. */
static void train_fixed_batch(const char *rel, const zn_setting *sets, int n_sets)
{
    zn_graph g;
    zn_recipe r;
    load(rel, sets, n_sets, &g, &r);
    zn_session s;
    zn_backend_opts o = {.threads = 0};
    int batch = 8;
    if (!zn_session_init(&s, &g, &zn_cpu_backend, &o, batch, true)) fail_msg("%s: %s", rel, s.err);
    assert_true(zn_session_init_params(&s, 7));
    size_t n_img = s.plan.bytes[s.image] / sizeof(float);
    float *images = malloc(sizeof *images * n_img);
    int32_t labels[8];
    zn_rng rng;
    zn_rng_init(&rng, 3);
    for (size_t i = 0; i < n_img; i++) images[i] = zn_rng_normal(&rng);
    for (int i = 0; i < batch; i++) labels[i] = (int32_t)zn_rng_below(&rng, 10);
    zn_optim_step st = {.kind = ZN_STEP_SGD, .lr = 0.02f / batch, .momentum = 0.9f, .nesterov = true};
    double first = 0, loss = 0;
    for (int step = 0; step < 20; step++) {
        if (!zn_session_feed(&s, images, labels) || !zn_session_train_step(&s, &st) ||
            !zn_session_loss(&s, &loss))
            fail_msg("%s step %d: %s", rel, step, s.err);
        if (step == 0) first = loss;
    }
    if (!(loss < 0.8 * first)) fail_msg("%s: loss %g after 20 steps, %g at the first", rel, loss, first);
    free(images);
    zn_session_free(&s);
    zn_graph_free(&g);
}

static void learn_batch(const char *rel, void *ctx)
{
    (void)ctx;
    const zn_setting narrow[] = {{"width", "8"}};
    const char *base = rel + strlen("models/");
    bool has_width = strncmp(base, "davidnet", 8) == 0 || strncmp(base, "fashion", 7) == 0;
    train_fixed_batch(rel, narrow, has_width ? 1 : 0);
}

static void test_every_model_learns_a_batch(void **state)
{
    (void)state;
    assert_true(zt_each_model(learn_batch, NULL) >= 5);
}

/* A session's loss is summed over the batch whatever the head's reduction, so the training loss
 * run reports per example means the same for a "mean" head as for a "sum" head. */
static double first_loss(const char *path, const char *reduction)
{
    const zn_setting set[] = {{"red", reduction}};
    zn_graph g;
    zt_load(path, set, 1, &g);
    zn_session s;
    zn_backend_opts o = {.threads = 1};
    if (!zn_session_init(&s, &g, &zn_cpu_backend, &o, 8, true) || !zn_session_init_params(&s, 5))
        fail_msg("%s: %s", path, s.err);
    float images[8 * 3 * 8 * 8];
    int32_t labels[8];
    zn_rng rng;
    zn_rng_init(&rng, 2);
    for (size_t i = 0; i < sizeof images / sizeof *images; i++) images[i] = zn_rng_normal(&rng);
    for (int i = 0; i < 8; i++) labels[i] = (int32_t)zn_rng_below(&rng, 10);
    double loss = 0;
    if (!zn_session_feed(&s, images, labels) || !zn_session_forward(&s, true) || !zn_session_loss(&s, &loss))
        fail_msg("%s: %s", path, s.err);
    zn_session_free(&s);
    zn_graph_free(&g);
    return loss;
}

static void test_loss_is_summed_whatever_the_reduction(void **state)
{
    (void)state;
    const char *path = zt_write_file("reduction.znet",
                                     "model tiny(red = \"sum\") {\n"
                                     "  input image: [3, 8, 8]\n"
                                     "  input label: class(10)\n"
                                     "  head out = xent(linear(gmp(conv2d(image, 4)), 10), label, reduction = red)\n"
                                     "}\n");
    double sum = first_loss(path, "\"sum\""), mean = first_loss(path, "\"mean\"");
    assert_true(sum > 8.0); /* 8 examples, 10 classes: about 8 ln 10 */
    assert_float_equal(mean, sum, 1e-4 * sum);
}

static char *slurp(const char *rel)
{
    FILE *f = fopen(zt_src_path(rel), "rb");
    if (!f) fail_msg("cannot open %s", rel);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = malloc((size_t)n + 1);
    if (fread(text, 1, (size_t)n, f) != (size_t)n) fail_msg("cannot read %s", rel);
    text[n] = 0;
    fclose(f);
    return text;
}

/* The README shows the model block verbatim; docs/language.md shows its tower and head lines. */
static void test_docs_quote_the_zee_model(void **state)
{
    (void)state;
    char *model = slurp("models/davidnet_zee.znet"), *readme = slurp("README.md"),
         *language = slurp("docs/language.md");
    char *start = strstr(model, "model davidnet_zee("), *end = start ? strstr(start, "\n}\n") : NULL;
    assert_non_null(end);
    end[3] = 0;
    if (!strstr(readme, start)) fail_msg("README.md does not quote models/davidnet_zee.znet's model block as written");
    for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n"))
        if ((strncmp(line, "  z", 3) == 0 || strncmp(line, "  head ", 7) == 0 || strncmp(line, "  tower", 7) == 0) &&
            !strstr(language, line))
            fail_msg("docs/language.md lacks the model's line \"%s\"", line);
    free(model), free(readme), free(language);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parameter_counts),
        cmocka_unit_test(test_se_shapes),
        cmocka_unit_test(test_every_model_learns_a_batch),
        cmocka_unit_test(test_docs_quote_the_zee_model),
        cmocka_unit_test(test_loss_is_summed_whatever_the_reduction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
