/* svg: a small SVG writer and the reliability diagram (see svg.h). */
#include "svg.h"

#include "cd.h"

#include <stdio.h>
#include <string.h>

/* Appends s (NULL: nothing) escaped as XML text or attribute value (cd_html_escape()), without
 * its control characters: XML 1.0 does not allow them. */
static int put_escaped(struct cd_buf *b, const char *s)
{
    int rc = 0;
    while (s && *s && !rc) {
        size_t n = 0;
        while (s[n] && ((unsigned char)s[n] >= 0x20 || s[n] == '\t' || s[n] == '\n'))
            n++;
        rc = cd_html_escape(b, s, n);
        s += n;
        if (*s)
            s++; /* a control character: dropped */
    }
    return rc;
}

/* Appends before, s escaped (put_escaped()), then after. */
static int put_wrapped(struct cd_buf *b, const char *before, const char *s, const char *after)
{
    int rc = cd_buf_puts(b, before);
    if (!rc)
        rc = put_escaped(b, s);
    return rc ? rc : cd_buf_puts(b, after);
}

int svg_begin(struct cd_buf *b, double width, double height, const char *title)
{
    int rc = cd_buf_printf(b,
                           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
                           "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                           "font-family=\"sans-serif\">\n",
                           width, height, width, height);
    if (!rc && title)
        rc = put_wrapped(b, "<title>", title, "</title>\n");
    if (!rc)
        rc = cd_buf_printf(b,
                           "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
                           "fill=\"white\"/>\n",
                           width, height);
    return rc;
}

int svg_end(struct cd_buf *b)
{
    return cd_buf_puts(b, "</svg>\n");
}

int svg_rect(struct cd_buf *b, double x, double y, double w, double h, const char *fill,
             const char *cls, const char *tip)
{
    int rc = cd_buf_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"",
                           x, y, w, h);
    if (!rc)
        rc = put_escaped(b, fill ? fill : "black");
    if (!rc && cls)
        rc = put_wrapped(b, "\" class=\"", cls, "");
    if (!rc && tip) {
        rc = put_wrapped(b, "\"><title>", tip, "</title></rect>\n");
    } else if (!rc) {
        rc = cd_buf_puts(b, "\"/>\n");
    }
    return rc;
}

int svg_line(struct cd_buf *b, double x1, double y1, double x2, double y2, const char *stroke,
             double width, int dashed)
{
    int rc = cd_buf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"", x1,
                           y1, x2, y2);
    if (!rc)
        rc = put_escaped(b, stroke ? stroke : "black");
    if (!rc)
        rc = cd_buf_printf(b, "\" stroke-width=\"%.2f\"%s/>\n", width,
                           dashed ? " stroke-dasharray=\"6 4\"" : "");
    return rc;
}

int svg_text(struct cd_buf *b, double x, double y, const char *anchor, double size,
             const char *text)
{
    int rc = cd_buf_printf(b, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%.1f\" text-anchor=\"", x, y,
                           size);
    if (!rc)
        rc = put_escaped(b, anchor ? anchor : "start");
    if (!rc)
        rc = put_wrapped(b, "\">", text, "</text>\n");
    return rc;
}

static double clamp01(double v)
{
    return v > 0 ? (v < 1 ? v : 1) : 0; /* NaN: 0 */
}

int svg_reliability(struct cd_buf *b, const struct svg_bin *bins, int n_bins, const char *title)
{
    const double x0 = SVG_REL_LEFT, y0 = SVG_REL_TOP + SVG_REL_PLOT_H;
    const double w = SVG_REL_PLOT_W, h = SVG_REL_PLOT_H;
    char label[160];
    cd_buf_reset(b);
    int rc = svg_begin(b, SVG_REL_WIDTH, SVG_REL_HEIGHT, title);
    if (!rc)
        rc = svg_text(b, SVG_REL_WIDTH / 2.0, 28, "middle", 16, title ? title : "");
    /* Grid and ticks every 0.2 on both axes. */
    for (int i = 0; i <= 5 && !rc; i++) {
        double t = i / 5.0;
        snprintf(label, sizeof label, "%.1f", t);
        rc = svg_line(b, x0, y0 - t * h, x0 + w, y0 - t * h, "#e0e0e0", 1, 0);
        if (!rc)
            rc = svg_text(b, x0 - 8, y0 - t * h + 4, "end", 11, label);
        if (!rc)
            rc = svg_text(b, x0 + t * w, y0 + 18, "middle", 11, label);
    }
    for (int i = 0; i < n_bins && !rc; i++) {
        const struct svg_bin *bin = &bins[i];
        if (!(bin->n > 0))
            continue;
        double lo = clamp01(bin->lo), hi = clamp01(bin->hi);
        double acc = clamp01(bin->accuracy), conf = clamp01(bin->confidence);
        double bx = x0 + lo * w + 1, bw = (hi - lo) * w - 2;
        if (bw < 1)
            bw = 1;
        snprintf(label, sizeof label,
                 "confidence %.2f-%.2f: %.0f, mean confidence %.3f, right %.3f", lo, hi, bin->n,
                 conf, acc);
        rc = svg_rect(b, bx, y0 - acc * h, bw, acc * h, "#4878cf", "bar", label);
        /* The gap to the mean confidence: over-confident above the bar, under below. */
        double top = conf > acc ? conf : acc, bottom = conf > acc ? acc : conf;
        if (!rc && top - bottom > 0)
            rc = svg_rect(b, bx, y0 - top * h, bw, (top - bottom) * h, "#f2a7a7", "gap", NULL);
        snprintf(label, sizeof label, "%.0f", bin->n);
        if (!rc)
            rc = svg_text(b, bx + bw / 2, y0 - acc * h - 4, "middle", 10, label);
    }
    if (!rc) /* perfect calibration */
        rc = svg_line(b, x0, y0, x0 + w, y0 - h, "#555555", 1.5, 1);
    if (!rc)
        rc = svg_line(b, x0, y0, x0 + w, y0, "black", 1, 0);
    if (!rc)
        rc = svg_line(b, x0, y0, x0, y0 - h, "black", 1, 0);
    if (!rc)
        rc = svg_text(b, x0 + w / 2, y0 + 40, "middle", 13, "confidence");
    if (!rc) {
        snprintf(label, sizeof label,
                 "<text x=\"18\" y=\"%.2f\" font-size=\"13\" "
                 "text-anchor=\"middle\" transform=\"rotate(-90 18 %.2f)\">",
                 y0 - h / 2, y0 - h / 2);
        rc = cd_buf_puts(b, label);
        if (!rc)
            rc = cd_buf_puts(b, "share right</text>\n");
    }
    if (!rc)
        rc = svg_text(b, x0 + w, SVG_REL_TOP - 8, "end", 11,
                      "bars: share right (count above); red: gap to mean confidence");
    if (!rc)
        rc = svg_end(b);
    return rc;
}

int svg_reliability_file(const char *path, const struct svg_bin *bins, int n_bins,
                         const char *title)
{
    struct cd_buf b = {0};
    int rc = svg_reliability(&b, bins, n_bins, title);
    if (!rc) {
        FILE *f = fopen(path, "w");
        if (!f || fwrite(b.data, 1, b.len, f) != b.len)
            rc = CD_EIO;
        if (f && fclose(f))
            rc = CD_EIO;
    }
    cd_buf_free(&b);
    return rc;
}
