/* svg: a small SVG 1.1 writer for the charts the command line draws (eval intents --plot),
 * and the reliability diagram built on it.
 *
 * Shapes are appended to a struct cd_buf in user units (the SVG's pixels, y downwards);
 * text is XML-escaped. A drawing is svg_begin(), any shapes, svg_end(). Every function
 * returns 0 or CD_ENOMEM (and then the buffer holds a partial drawing: discard it). */
#ifndef CD_SVG_H
#define CD_SVG_H

#include <stddef.h>

struct cd_buf;

/* Opens a drawing of width x height with a white background and a title (the
 * document's <title> and nothing drawn; NULL for none). */
int svg_begin(struct cd_buf *b, double width, double height, const char *title);
int svg_end(struct cd_buf *b);

/* A rectangle. cls (an SVG class name, may be NULL) lets tests and style sheets find it;
 * tip (NULL for none) becomes a <title> shown on hover. */
int svg_rect(struct cd_buf *b, double x, double y, double w, double h, const char *fill,
             const char *cls, const char *tip);
/* A line; dashed draws it in 6-4 dashes. */
int svg_line(struct cd_buf *b, double x1, double y1, double x2, double y2, const char *stroke,
             double width, int dashed);
/* Text at (x, y), anchor "start", "middle" or "end"; size in user units. */
int svg_text(struct cd_buf *b, double x, double y, const char *anchor, double size,
             const char *text);

/* ---- reliability diagram ---- */

/* One confidence bin: [lo, hi), how many predictions fell in it, their mean confidence and
 * the share of them that were right. A bin with n == 0 draws nothing. */
struct svg_bin {
    double lo, hi;
    double n;
    double confidence;
    double accuracy;
};

/* Geometry of svg_reliability()'s plot area, for tests: an accuracy a is drawn as a bar
 * of height a * SVG_REL_PLOT_H. */
#define SVG_REL_WIDTH  640
#define SVG_REL_HEIGHT 480
#define SVG_REL_LEFT   64
#define SVG_REL_TOP    56
#define SVG_REL_PLOT_W 540
#define SVG_REL_PLOT_H 340

/* Draws a reliability diagram into b (reset first): confidence on x, accuracy on y, one
 * bar per non-empty bin (class "bar") with its count above it, the gap to the bin's mean
 * confidence (class "gap"), the diagonal of perfect calibration, axes and title. */
int svg_reliability(struct cd_buf *b, const struct svg_bin *bins, int n_bins, const char *title);

/* svg_reliability() written to the file at path. Returns 0, CD_ENOMEM or CD_EIO. */
int svg_reliability_file(const char *path, const struct svg_bin *bins, int n_bins,
                         const char *title);

#endif
