/* report-svg.c: --svg FILE, a chart of live bytes (requested, all processes) and of the heap
 * mapped from the OS over time, as a standalone SVG 1.1 document a browser opens.
 *
 * The model keeps at most a few thousand points, each the highest values of a stretch of
 * events, so the peaks survive the thinning. Every text written goes through put_text (XML
 * escaping); the file must parse as XML.
 */
#include "report.h"

#include <errno.h>

#define WIDTH 960
#define HEIGHT 480
#define LEFT 90
#define RIGHT 20
#define TOP 50
#define BOTTOM 60
#define PLOT_W (WIDTH - LEFT - RIGHT)
#define PLOT_H (HEIGHT - TOP - BOTTOM)
#define TICKS 5

static void put_text(FILE *out, const char *text)
{
  for (; *text != '\0'; text++) {
    switch (*text) {
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '&': fputs("&amp;", out); break;
    case '"': fputs("&quot;", out); break;
    default: fputc(*text, out);
    }
  }
}

struct scale {
  uint64_t t0, t1; /* time range, ns */
  uint64_t top;    /* bytes at the top of the plot */
};

static double x_of(const struct scale *s, uint64_t ts)
{
  double span = s->t1 > s->t0 ? (double)(s->t1 - s->t0) : 1.0;
  return LEFT + PLOT_W * (double)(ts - MIN(ts, s->t0)) / span;
}

static double y_of(const struct scale *s, uint64_t bytes)
{
  return TOP + PLOT_H - PLOT_H * (double)bytes / (double)(s->top ? s->top : 1);
}

static void put_series(FILE *out, const struct scale *s, const GArray *points, bool heap,
                       const char *colour)
{
  fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colour);
  for (guint i = 0; i < points->len; i++) {
    const struct pt_point *p = &g_array_index(points, struct pt_point, i);
    fprintf(out, "%.1f,%.1f ", x_of(s, p->ts), y_of(s, heap ? p->heap : p->live));
  }
  fputs("\"/>\n", out);
}

static void put_axes(FILE *out, const struct scale *s)
{
  fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"#888\"/>\n", LEFT, TOP, PLOT_W, PLOT_H);
  for (int i = 0; i <= TICKS; i++) {
    char label[32];
    uint64_t bytes = s->top / TICKS * (uint64_t)i;
    pt_format_bytes(label, sizeof label, bytes);
    double y = y_of(s, bytes);
    fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                 "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", LEFT, y, LEFT + PLOT_W, y,
            LEFT - 6, y + 4);
    put_text(out, label);
    fputs("</text>\n", out);
    double seconds = (double)(s->t1 - s->t0) / 1e9 * i / TICKS;
    fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3f s</text>\n",
            LEFT + PLOT_W * (double)i / TICKS, TOP + PLOT_H + 18, seconds);
  }
}

static void put_legend(FILE *out, const struct pt_report *report)
{
  const struct pt_totals *t = &report->model->all;
  char live[32], heap[32];
  pt_format_bytes(live, sizeof live, t->peak_live);
  pt_format_bytes(heap, sizeof heap, t->heap_peak);
  fputs("<text x=\"10\" y=\"24\" font-size=\"16\">palloc-trace: ", out);
  put_text(out, report->trace_dir);
  fputs("</text>\n", out);
  fprintf(out, "<text x=\"%d\" y=\"%d\" fill=\"#c0392b\">live bytes (requested), peak %s"
               "</text>\n<text x=\"%d\" y=\"%d\" fill=\"#2c6fbb\">heap mapped from the OS, "
               "peak %s</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time since the "
               "first event</text>\n",
          LEFT, HEIGHT - 22, live, LEFT + 360, HEIGHT - 22, heap, LEFT + PLOT_W / 2,
          HEIGHT - 6);
}

int pt_report_svg(const char *path, const struct pt_report *report)
{
  FILE *out = fopen(path, "w");
  if (out == NULL)
    return -1;
  const struct pt_model *model = report->model;
  struct scale s = { model->first_ts, model->last_ts,
                     MAX(model->all.peak_live, model->all.heap_peak) };
  s.top = s.top + s.top / 20 + 1; /* headroom */
  fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
          WIDTH, HEIGHT, WIDTH, HEIGHT);
  put_legend(out, report);
  put_axes(out, &s);
  put_series(out, &s, model->timeline, true, "#2c6fbb");
  put_series(out, &s, model->timeline, false, "#c0392b");
  fputs("</svg>\n", out);
  int error = ferror(out) ? EIO : 0;
  if (fclose(out) != 0 && error == 0)
    error = errno;
  errno = error;
  return error ? -1 : 0;
}
