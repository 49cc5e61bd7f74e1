/* plot.c: training logs drawn as a standalone SVG (two panels: training loss, per epoch and,
 * from step records, per step; train accuracy dashed and test accuracy per head and vote solid;
 * with step records a third, the learning rate; several runs overlaid, one hue per run; the
 * mean curves of a sweep's configurations with a band each) and written as CSV. Axes get "nice" ticks (1, 2, 2.5 or 5 times a power of ten). */
#include "report/plot.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* layout, in SVG pixels */
#define WIDTH 1040.0
#define PANEL_W 400.0
#define PANEL_H 300.0
#define PANEL_TOP 78.0
#define LEFT 72.0
#define GAP 120.0
#define LR_TOP (PANEL_TOP + PANEL_H + 72.0) /* the learning-rate panel, under the loss panel */
#define LR_H 150.0
#define LEGEND_GAP 62.0 /* from the lowest panel's bottom to the legend */
#define LEGEND_ROW 22.0
#define CHAR_W 6.8 /* rough widths of a 12px sans-serif character, plain and bold, for */
#define BOLD_W 7.8   /* laying out the legend */
#define MAX_POINTS_FOR_MARKERS 60

/* series ids besides test_acc[0..]; the first two are drawn from step records */
enum { S_LR = -4, S_STEP_LOSS = -3, S_LOSS = -2, S_TRAIN = -1 };

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
enum { N_PALETTE = sizeof palette / sizeof palette[0] };

typedef struct {
    double lo, hi, step; /* data range shown, tick spacing */
    int decimals;        /* for tick labels */
    bool percent;        /* labels as value * 100 "%" */
} axis;

typedef struct {
    double x0, y0, x1, y1; /* plot area */
    axis ax, ay;
} panel;

/* A series as points: the doubles at offsets x and y of n records stride bytes apart (epoch or
 * step records), so that every series is drawn and measured by the same code. */
typedef struct {
    const char *base;
    size_t stride, x, y;
    int n;
} track;

static track track_of(const zn_train_log *log, int s)
{
    if (s == S_LR || s == S_STEP_LOSS)
        return (track){(const char *)log->steps, sizeof *log->steps, offsetof(zn_log_step, epoch),
                       s == S_LR ? offsetof(zn_log_step, lr) : offsetof(zn_log_step, loss), log->n_steps};
    size_t y = s == S_LOSS    ? offsetof(zn_log_epoch, train_loss)
               : s == S_TRAIN ? offsetof(zn_log_epoch, train_acc)
                              : offsetof(zn_log_epoch, test_acc) + (size_t)s * sizeof(double);
    return (track){(const char *)log->epochs, sizeof *log->epochs, offsetof(zn_log_epoch, epoch), y, log->n_epochs};
}

static double at(const track *t, int i, size_t offset)
{
    double v;
    memcpy(&v, t->base + (size_t)i * t->stride + offset, sizeof v);
    return v;
}

static bool has_point(const track *t, int i) { return isfinite(at(t, i, t->x)) && isfinite(at(t, i, t->y)); }

/* Ticks for [lo, hi] with about `target` intervals; integer steps only when integral. */
static axis axis_make(double lo, double hi, int target, bool integral, bool percent)
{
    if (!(hi > lo)) { /* one value: 10% either side; none: [lo or 0, +1] */
        bool one = isfinite(lo) && isfinite(hi);
        double pad = one && lo != 0 ? fabs(lo) * 0.1 : 1;
        lo = one ? lo - pad : isfinite(lo) ? lo : 0;
        hi = one ? hi + pad : lo + 1;
    }
    double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    axis a = {.step = nice * mag, .percent = percent};
    if (integral && a.step < 1) a.step = 1;
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    double shown = percent ? a.step * 100 : a.step;
    a.decimals = shown >= 1 ? (nice == 2.5 && shown < 10 ? 1 : 0) : (int)ceil(-log10(shown) - 1e-9) + (nice == 2.5);
    return a;
}

/* Widens [lo, hi] to take in v; non-finite values are missing data. */
static void extend(double v, double *lo, double *hi)
{
    if (!isfinite(v)) return;
    if (!(v >= *lo)) *lo = v;
    if (!(v <= *hi)) *hi = v;
}

static double px(const panel *p, double x) { return p->x0 + (x - p->ax.lo) / (p->ax.hi - p->ax.lo) * (p->x1 - p->x0); }
static double py(const panel *p, double y) { return p->y1 - (y - p->ay.lo) / (p->ay.hi - p->ay.lo) * (p->y1 - p->y0); }

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
        }
    }
}

static void tick_label(char *buf, size_t len, const axis *a, double v)
{
    if (fabs(v) < a->step * 1e-6) v = 0; /* no "-0" */
    snprintf(buf, len, "%.*f%s", a->decimals, a->percent ? v * 100 : v, a->percent ? "%" : "");
}

/* Intervals between ticks; -1 (no ticks) for absurd ranges, e.g. an epoch of 1e300 in a log. */
static int tick_count(const axis *a)
{
    double n = (a->hi - a->lo) / a->step;
    return isfinite(n) && n >= 0 && n <= 100 ? (int)lround(n) : -1;
}

static void draw_frame(FILE *f, const panel *p, const char *title, const char *xlabel, const char *ylabel)
{
    fprintf(f, "<g class=\"panel\">\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
               "font-weight=\"bold\">%s</text>\n", (p->x0 + p->x1) / 2, p->y0 - 10, title);
    char buf[64];
    for (int k = 0, n = tick_count(&p->ay); k <= n; k++) {
        double v = p->ay.lo + k * p->ay.step, y = py(p, v);
        tick_label(buf, sizeof buf, &p->ay, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                p->x0, y, p->x1, y, p->x0 - 6, y + 4, buf);
    }
    for (int k = 0, n = tick_count(&p->ax); k <= n; k++) {
        double v = p->ax.lo + k * p->ax.step, x = px(p, v);
        tick_label(buf, sizeof buf, &p->ax, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                x, p->y0, x, p->y1, x, p->y1 + 17, buf);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
            p->x0, p->y0, p->x1 - p->x0, p->y1 - p->y0);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", (p->x0 + p->x1) / 2, p->y1 + 38,
            xlabel);
    fprintf(f, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n</g>\n",
            p->x0 - 50, (p->y0 + p->y1) / 2, ylabel);
}

/* "#rrggbb" of palette colour c mixed with white by t (0: the colour itself). */
static void mix_white(const char *c, double t, char out[8])
{
    unsigned rgb[3];
    sscanf(c + 1, "%2x%2x%2x", &rgb[0], &rgb[1], &rgb[2]);
    for (int i = 0; i < 3; i++) rgb[i] = (unsigned)lround(rgb[i] + (255 - rgb[i]) * t);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

/* One run: a palette colour per series. Several: one hue per run, its test series from light
 * to full strength, the last (the vote, or the deepest head) full. The per-step loss is a pale
 * version of the epoch loss's colour, behind it. */
static void series_colour(int run, int n_runs, const zn_train_log *log, int s, char out[8])
{
    if (s == S_STEP_LOSS) {
        mix_white(palette[(n_runs == 1 ? 0 : run) % N_PALETTE], 0.55, out);
        return;
    }
    if (n_runs == 1) {
        snprintf(out, 8, "%s", palette[(s < 0 ? 0 : s + 1) % N_PALETTE]);
        return;
    }
    int m = log->n_series;
    double t = s < 0 || m < 2 ? 0 : 0.6 * (m - 1 - s) / (m - 1);
    mix_white(palette[run % N_PALETTE], t, out);
}

static const char *series_name(const zn_train_log *log, int s)
{
    static const char *const names[] = {"lr", "step loss", "loss", "train"};
    return s < 0 ? names[s - S_LR] : log->series[s];
}

/* The polyline's class: which panel it is drawn in (and for the loss panel, which kind). */
static const char *series_class(int s)
{
    return s == S_LR ? "lr" : s == S_STEP_LOSS ? "step" : s == S_LOSS ? "loss" : "acc";
}

/* Series s of a run as polylines over its runs of finite values; a lone point as a dot; markers
 * on the epoch series that are short enough to show them. */
static void draw_series(FILE *f, const panel *p, const zn_train_log *log, int run, int s, const char *colour)
{
    track t = track_of(log, s);
    bool dashed = s == S_TRAIN, markers = s >= S_LOSS && t.n <= MAX_POINTS_FOR_MARKERS;
    bool strong = s >= 0 && strcmp(log->series[s], "vote") == 0;
    const char *width = strong ? "2.6" : s == S_STEP_LOSS ? "1.0" : "1.8";
    for (int i = 0; i < t.n;) {
        if (!has_point(&t, i)) {
            i++;
            continue;
        }
        int j = i;
        while (j < t.n && has_point(&t, j)) j++;
        fprintf(f, "<polyline class=\"%s\" data-run=\"%d\" data-series=\"", series_class(s), run);
        xml_text(f, series_name(log, s));
        fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s stroke-linejoin=\"round\" points=\"",
                colour, width, dashed ? " stroke-dasharray=\"6 4\"" : "");
        for (int k = i; k < j; k++) fprintf(f, "%s%.1f,%.1f", k > i ? " " : "", px(p, at(&t, k, t.x)), py(p, at(&t, k, t.y)));
        fputs("\"/>\n", f);
        for (int k = i; k < j && (markers || j - i == 1); k++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"/>\n", px(p, at(&t, k, t.x)),
                    py(p, at(&t, k, t.y)), dashed ? "1.6" : "2.2", colour);
        i = j;
    }
}

/* Widens [*lo, *hi] (x) and [*ylo, *yhi] (y) to take in series s of a run. */
static void extend_track(const zn_train_log *log, int s, double *lo, double *hi, double *ylo, double *yhi)
{
    track t = track_of(log, s);
    for (int i = 0; i < t.n; i++) {
        if (!has_point(&t, i)) continue;
        extend(at(&t, i, t.x), lo, hi);
        extend(at(&t, i, t.y), ylo, yhi);
    }
}

/* A run's name in the legend: its model, with the log file when runs share a model. */
static void run_label(const zn_train_log *logs, int n, int r, char *out, size_t len)
{
    bool shared = false;
    for (int k = 0; k < n; k++) shared |= k != r && strcmp(logs[k].model, logs[r].model) == 0;
    const char *base = strrchr(logs[r].path, '/');
    base = base ? base + 1 : logs[r].path;
    if (shared) snprintf(out, len, "%s (%s)", logs[r].model, base);
    else if (logs[r].file[0]) snprintf(out, len, "%s (%s)", logs[r].model, logs[r].file);
    else snprintf(out, len, "%s", logs[r].model);
}

/* The legend rows under the panels from top (one or more per run); returns the bottom. */
static double draw_legend(FILE *f, const zn_train_log *logs, int n, double top, bool draw)
{
    char label[1200];
    double items_x = LEFT; /* where every row's entries start, past the longest run label */
    for (int r = 0; r < n; r++) {
        run_label(logs, n, r, label, sizeof label);
        items_x = fmax(items_x, LEFT + (strlen(label) + 1) * BOLD_W + 10);
    }
    double y = top;
    for (int r = 0; r < n; r++) {
        const zn_train_log *log = &logs[r];
        run_label(logs, n, r, label, sizeof label);
        double x = LEFT;
        if (draw) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">", x, y + 4);
            xml_text(f, label);
            fputs(":</text>\n", f);
        }
        x = items_x;
        for (int s = log->n_steps ? S_LR : S_LOSS; s < log->n_series; s++) {
            static const char *const names[] = {"learning rate", "step loss", "training loss", "train acc"};
            const char *name = s < 0 ? names[s - S_LR] : log->series[s];
            double w = 34 + strlen(name) * CHAR_W + 16;
            if (x + w > WIDTH - 10 && x > items_x) {
                x = items_x;
                y += LEGEND_ROW;
            }
            char colour[8];
            series_colour(r, n, log, s, colour);
            if (draw) {
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.2\"%s/>"
                           "<text x=\"%.1f\" y=\"%.1f\">", x, y, x + 26, y, colour,
                        s == S_TRAIN ? " stroke-dasharray=\"6 4\"" : "", x + 32, y + 4);
                xml_text(f, name);
                fputs("</text>\n", f);
            }
            x += w;
        }
        y += LEGEND_ROW;
    }
    return y;
}

static void default_title(const zn_train_log *logs, int n, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int r = 0; r < n; r++) {
        bool seen = false;
        for (int k = 0; k < r; k++) seen |= strcmp(logs[k].model, logs[r].model) == 0;
        if (seen) continue;
        int w = snprintf(out + used, len - used, "%s%s", used ? " vs " : "", logs[r].model);
        if (w < 0 || (size_t)w >= len - used) break;
        used += (size_t)w;
    }
}

/* Whether the band is open at point i: both ends finite, hi above lo (a band of one run, or of
 * runs that agree, has no width and is not drawn). */
static bool band_at(const track *a, const track *b, int i)
{
    return has_point(a, i) && has_point(b, i) && at(b, i, b->y) > at(a, i, a->y);
}

/* Series s of a run's band as filled polygons from lo up to hi over the epochs where it is
 * open, pale in the series' colour, drawn under the mean's line. */
static void draw_band(FILE *f, const panel *p, const zn_train_log *lo, const zn_train_log *hi, int run, int s,
                      const char *colour)
{
    track a = track_of(lo, s), b = track_of(hi, s);
    for (int i = 0; i < a.n;) {
        if (!band_at(&a, &b, i)) {
            i++;
            continue;
        }
        int j = i;
        while (j < a.n && band_at(&a, &b, j)) j++;
        fprintf(f, "<polygon class=\"band\" data-run=\"%d\" data-series=\"", run);
        xml_text(f, series_name(lo, s));
        fprintf(f, "\" fill=\"%s\" fill-opacity=\"0.2\" stroke=\"none\" points=\"", colour);
        for (int k = i; k < j; k++) fprintf(f, "%.1f,%.1f ", px(p, at(&b, k, b.x)), py(p, at(&b, k, b.y)));
        for (int k = j - 1; k >= i; k--) fprintf(f, "%.1f,%.1f%s", px(p, at(&a, k, a.x)), py(p, at(&a, k, a.y)), k > i ? " " : "");
        fputs("\"/>\n", f);
        i = j;
    }
}

/* The SVG document's opening: its size, white ground and title. */
static void svg_open(FILE *f, double width, double height, const char *title)
{
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\" fill=\"#222\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"%.1f\" y=\"34\" text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\">",
            width, height, width, height, width / 2);
    xml_text(f, title);
    fputs("</text>\n", f);
}

bool zn_plot_curve_svg(FILE *f, const double *x, const double *y, int n, const char *title, const char *xlabel,
                       const char *ylabel)
{
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = 0, y_hi = -INFINITY;
    for (int i = 0; i < n; i++) extend(x[i], &x_lo, &x_hi), extend(y[i], &y_lo, &y_hi);
    panel p = {LEFT + 20, PANEL_TOP, LEFT + 20 + 2 * PANEL_W, PANEL_TOP + PANEL_H, axis_make(x_lo, x_hi, 8, false, false),
               axis_make(y_lo, y_hi, 6, false, false)};
    svg_open(f, p.x1 + 40, p.y1 + 60, title);
    draw_frame(f, &p, "", xlabel, ylabel);
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", palette[0]);
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(&p, x[i]), py(&p, y[i]));
    fputs("\"/>\n", f);
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px(&p, x[i]), py(&p, y[i]), palette[0]);
    fputs("</svg>\n", f);
    return !ferror(f);
}

bool zn_plot_svg(FILE *f, const zn_train_log *logs, int n, const char *title)
{
    return zn_plot_svg_bands(f, logs, NULL, NULL, n, title);
}

bool zn_plot_svg_bands(FILE *f, const zn_train_log *logs, const zn_train_log *lo, const zn_train_log *hi, int n,
                       const char *title)
{
    double e_lo = INFINITY, e_hi = -INFINITY, l_lo = 0, l_hi = -INFINITY, a_lo = INFINITY, a_hi = -INFINITY;
    double r_lo = 0, r_hi = -INFINITY;
    bool steps = false;
    for (int r = 0; r < n; r++) {
        for (int i = 0; i < logs[r].n_epochs; i++) extend(logs[r].epochs[i].epoch, &e_lo, &e_hi);
        for (int s = S_STEP_LOSS; s <= S_LOSS; s++) extend_track(&logs[r], s, &e_lo, &e_hi, &l_lo, &l_hi);
        for (int s = S_TRAIN; s < logs[r].n_series; s++) extend_track(&logs[r], s, &e_lo, &e_hi, &a_lo, &a_hi);
        for (int s = S_LOSS; lo && hi && s < logs[r].n_series; s++)
            for (int k = 0; k < 2; k++)
                extend_track(k ? &hi[r] : &lo[r], s, &e_lo, &e_hi, s == S_LOSS ? &l_lo : &a_lo, s == S_LOSS ? &l_hi : &a_hi);
        extend_track(&logs[r], S_LR, &e_lo, &e_hi, &r_lo, &r_hi);
        steps |= logs[r].n_steps > 0;
    }
    if (e_lo > 1) e_lo = floor(e_lo); /* epochs usually count from 1: show the axis from 0 */
    else e_lo = fmin(e_lo, 0);
    panel loss = {LEFT, PANEL_TOP, LEFT + PANEL_W, PANEL_TOP + PANEL_H,
                  axis_make(e_lo, e_hi, 6, true, false), axis_make(l_lo, l_hi, 6, false, false)};
    panel acc = {LEFT + PANEL_W + GAP, PANEL_TOP, LEFT + 2 * PANEL_W + GAP, PANEL_TOP + PANEL_H, loss.ax,
                 axis_make(a_lo, a_hi, 6, false, !(a_hi > 1))};
    if (!(a_hi > 1) && acc.ay.hi > 1) acc.ay.hi = 1; /* fractions: never past 100% */
    if (acc.ay.lo < 0 && !(a_lo < 0)) acc.ay.lo = 0;
    panel lr = {LEFT, LR_TOP, LEFT + PANEL_W, LR_TOP + LR_H, loss.ax, axis_make(r_lo, r_hi, 4, false, false)};
    double legend_top = (steps ? lr.y1 : loss.y1) + LEGEND_GAP;

    char auto_title[512];
    default_title(logs, n, auto_title, sizeof auto_title);
    double height = draw_legend(f, logs, n, legend_top, false) + 8;
    svg_open(f, WIDTH, height, title ? title : auto_title);
    draw_frame(f, &loss, "training loss", "epoch", "loss");
    draw_frame(f, &acc, "accuracy (test solid, train dashed)", "epoch", "accuracy");
    if (steps) draw_frame(f, &lr, "learning rate (per step)", "epoch", "lr");
    for (int r = 0; lo && hi && r < n; r++)
        for (int s = S_LOSS; s < logs[r].n_series; s++) {
            char colour[8];
            if (s == S_TRAIN) continue; /* a dashed line with a band of its own would hide the test bands */
            series_colour(r, n, &logs[r], s, colour);
            draw_band(f, s == S_LOSS ? &loss : &acc, &lo[r], &hi[r], r, s, colour);
        }
    for (int r = 0; r < n; r++) {
        char colour[8];
        for (int s = S_LR; s < logs[r].n_series; s++) {
            series_colour(r, n, &logs[r], s, colour);
            draw_series(f, s == S_LR ? &lr : s <= S_LOSS ? &loss : &acc, &logs[r], r, s, colour);
        }
    }
    draw_legend(f, logs, n, legend_top, true);
    fputs("</svg>\n", f);
    return !ferror(f);
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_number(FILE *f, double v)
{
    fputc(',', f);
    if (isfinite(v)) fprintf(f, "%.10g", v);
}

void zn_plot_csv(FILE *f, const zn_train_log *logs, int n)
{
    /* the union of the runs' test series, in order of appearance */
    const char *keys[ZN_LOG_MAX_SERIES * 8];
    int n_keys = 0;
    for (int r = 0; r < n; r++)
        for (int s = 0; s < logs[r].n_series; s++) {
            bool seen = false;
            for (int k = 0; k < n_keys; k++) seen |= strcmp(keys[k], logs[r].series[s]) == 0;
            if (!seen && n_keys < (int)(sizeof keys / sizeof keys[0])) keys[n_keys++] = logs[r].series[s];
        }
    fputs("log,model,epoch,step,lr,train_loss,train_acc", f);
    for (int k = 0; k < n_keys; k++) {
        fputs(",test_", f);
        csv_field(f, keys[k]);
    }
    fputs(",time,img_per_s\n", f);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < logs[r].n_epochs; i++) {
            const zn_log_epoch *e = &logs[r].epochs[i];
            csv_field(f, logs[r].path);
            fputc(',', f);
            csv_field(f, logs[r].model);
            csv_number(f, e->epoch);
            csv_number(f, e->step);
            csv_number(f, e->lr);
            csv_number(f, e->train_loss);
            csv_number(f, e->train_acc);
            for (int k = 0; k < n_keys; k++) {
                int s = 0;
                while (s < logs[r].n_series && strcmp(logs[r].series[s], keys[k]) != 0) s++;
                csv_number(f, s < logs[r].n_series ? e->test_acc[s] : NAN);
            }
            csv_number(f, e->time);
            csv_number(f, e->img_per_s);
            fputc('\n', f);
        }
}
