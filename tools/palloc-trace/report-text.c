/* report-text.c: the report for people: summary, leaks, hot spots, temporaries, histograms,
 * misuse, processes and threads; and the few lines palloc-run --trace prints. */
#include "report.h"

#include <string.h>

#define BAR_WIDTH 40

static void print_calls(FILE *out, const struct pt_totals *totals)
{
  fputs("  calls:", out);
  for (int fn = 0; fn < PT_FN_COUNT; fn++) {
    if (totals->calls[fn] == 0)
      continue;
    fprintf(out, " %s %llu", pt_function_names[fn], (unsigned long long)totals->calls[fn]);
    if (totals->failed[fn] != 0)
      fprintf(out, " (%llu failed)", (unsigned long long)totals->failed[fn]);
  }
  fputc('\n', out);
}

static void print_bytes_line(FILE *out, const char *label, uint64_t bytes, const char *rest)
{
  char human[32];
  pt_format_bytes(human, sizeof human, bytes);
  fprintf(out, "  %-14s %llu bytes (%s)%s\n", label, (unsigned long long)bytes, human, rest);
}

static void print_totals(FILE *out, const struct pt_model *model, const struct pt_totals *t)
{
  char rest[256];
  print_calls(out, t);
  snprintf(rest, sizeof rest, " in %llu blocks; usable %llu bytes: internal fragmentation %.1f%%",
           (unsigned long long)t->allocations, (unsigned long long)t->usable,
           100.0 * pt_fragmentation(t));
  print_bytes_line(out, "requested:", t->requested, rest);
  snprintf(rest, sizeof rest, " at +%.6f s", pt_seconds_since_start(model, t->peak_ts));
  print_bytes_line(out, "peak live:", t->peak_live, rest);
  if (t->heap_events != 0) {
    snprintf(rest, sizeof rest, " at +%.6f s; overhead heap/live %.2f",
             pt_seconds_since_start(model, t->heap_peak_ts), pt_heap_overhead(t));
    print_bytes_line(out, "peak heap:", t->heap_peak, rest);
  }
  snprintf(rest, sizeof rest, " in %llu blocks", (unsigned long long)t->leaked_blocks);
  print_bytes_line(out, "leaked:", t->leaked_bytes, rest);
  fprintf(out, "  %-14s %llu of %llu allocations (%.1f%%)\n", "temporary:",
          (unsigned long long)t->temporaries, (unsigned long long)t->allocations,
          t->allocations ? 100.0 * (double)t->temporaries / (double)t->allocations : 0.0);
  fprintf(out, "  %-14s %llu double frees, %llu frees of unknown pointers", "misuse:",
          (unsigned long long)t->double_frees, (unsigned long long)t->unknown_frees);
  if (t->inherited_frees != 0)
    fprintf(out, " (and %llu frees of blocks inherited through fork)",
            (unsigned long long)t->inherited_frees);
  fputc('\n', out);
}

static void print_ranking(FILE *out, const struct pt_report *report, enum pt_ranking ranking,
                          const char *title, const char *unit)
{
  GArray *rows = pt_rank_callers(report->model, ranking);
  fprintf(out, "\n%s\n", title);
  if (rows->len == 0)
    fputs("  (none)\n", out);
  for (guint i = 0; i < rows->len && i < report->top; i++) {
    const struct pt_row *row = &g_array_index(rows, struct pt_row, i);
    char where[1024];
    pt_format_symbol(where, sizeof where,
                     pt_symbols_resolve(report->model, row->process, row->caller->addr),
                     row->caller->addr);
    fprintf(out, "  %12llu %-6s", (unsigned long long)pt_ranking_value(row->caller, ranking),
            unit);
    if (ranking == PT_RANK_LEAKED)
      fprintf(out, " %6llu blocks", (unsigned long long)row->caller->leaked_blocks);
    fprintf(out, "  vpid %lld  %s\n", (long long)row->process->vpid, where);
  }
  if (rows->len > report->top)
    fprintf(out, "  ... %u more caller%s\n", rows->len - report->top,
            rows->len - report->top == 1 ? "" : "s");
  g_array_free(rows, TRUE);
}

static void print_bar(FILE *out, uint64_t count, uint64_t largest)
{
  int width = largest ? (int)((double)count * BAR_WIDTH / (double)largest + 0.999) : 0;
  for (int i = 0; i < width; i++)
    fputc('#', out);
  fputc('\n', out);
}

static void print_size_histogram(FILE *out, const struct pt_totals *t)
{
  uint64_t largest = 0;
  for (int b = 0; b < PT_SIZE_BUCKETS; b++)
    largest = MAX(largest, t->size_hist[b]);
  fputs("\nRequest sizes (bytes)\n", out);
  for (int b = 0; b < PT_SIZE_BUCKETS; b++) {
    if (t->size_hist[b] == 0)
      continue;
    uint64_t low, high;
    pt_size_bucket_bounds(b, &low, &high);
    fprintf(out, "  %10llu - %-10llu %10llu ", (unsigned long long)low,
            (unsigned long long)(high - 1), (unsigned long long)t->size_hist[b]);
    print_bar(out, t->size_hist[b], largest);
  }
}

static void format_duration(char *text, size_t size, uint64_t ns)
{
  if (ns == UINT64_MAX)
    snprintf(text, size, "longer");
  else if (ns < 1000000)
    snprintf(text, size, "%llu us", (unsigned long long)(ns / 1000));
  else if (ns < 1000000000)
    snprintf(text, size, "%llu ms", (unsigned long long)(ns / 1000000));
  else
    snprintf(text, size, "%llu s", (unsigned long long)(ns / 1000000000));
}

static void print_life_histogram(FILE *out, const struct pt_totals *t)
{
  uint64_t largest = 0;
  for (int b = 0; b < PT_LIFE_BUCKETS; b++)
    largest = MAX(largest, t->life_hist[b]);
  fputs("\nLifetimes of freed blocks\n", out);
  for (int b = 0; b < PT_LIFE_BUCKETS; b++) {
    if (t->life_hist[b] == 0)
      continue;
    uint64_t low, high;
    char text[32];
    pt_life_bucket_bounds(b, &low, &high);
    format_duration(text, sizeof text, high);
    fprintf(out, "  %s %-8s %10llu ", high == UINT64_MAX ? "  " : "< ", text,
            (unsigned long long)t->life_hist[b]);
    print_bar(out, t->life_hist[b], largest);
  }
}

static void print_misuse(FILE *out, const struct pt_report *report, GPtrArray *processes)
{
  if (report->model->all.double_frees + report->model->all.unknown_frees == 0)
    return;
  fputs("\nMisuse (an unknown pointer may also be a block allocated before tracing started)\n",
        out);
  for (guint p = 0; p < processes->len; p++) {
    struct pt_process *process = processes->pdata[p];
    for (guint i = 0; i < process->misuse->len; i++) {
      const struct pt_misuse *m = &g_array_index(process->misuse, struct pt_misuse, i);
      char where[1024], first[1024];
      pt_format_symbol(where, sizeof where,
                       pt_symbols_resolve(report->model, process, m->caller), m->caller);
      fprintf(out, "  vpid %lld tid %lld +%.6f s: %s %#llx by %s\n", (long long)process->vpid,
              (long long)m->tid, pt_seconds_since_start(report->model, m->ts),
              m->is_double ? "double free of" : "free of unknown pointer",
              (unsigned long long)m->ptr, where);
      if (m->is_double) {
        pt_format_symbol(first, sizeof first,
                         pt_symbols_resolve(report->model, process, m->first_free_caller),
                         m->first_free_caller);
        fprintf(out, "      first freed by %s\n", first);
      }
    }
  }
}

static void print_threads(FILE *out, const struct pt_process *process)
{
  GPtrArray *threads = pt_process_threads(process);
  if (threads->len > 1)
    for (guint i = 0; i < threads->len; i++) {
      const struct pt_thread *t = threads->pdata[i];
      fprintf(out, "    tid %-8lld %10llu allocations %14llu bytes, peak of its own live "
                   "blocks %llu bytes, %llu temporary\n",
              (long long)t->tid, (unsigned long long)t->allocations,
              (unsigned long long)t->bytes, (unsigned long long)t->peak_live,
              (unsigned long long)t->temporaries);
    }
  g_ptr_array_free(threads, TRUE);
}

static void print_processes(FILE *out, const struct pt_report *report, GPtrArray *processes)
{
  fputs("\nProcesses\n", out);
  for (guint p = 0; p < processes->len; p++) {
    const struct pt_process *process = processes->pdata[p];
    fprintf(out, "  vpid %lld (%s), %.6f s, %u threads\n", (long long)process->vpid,
            process->procname, (double)(process->last_ts - process->first_ts) / 1e9,
            g_hash_table_size(process->threads));
    print_totals(out, report->model, &process->totals);
    print_threads(out, process);
  }
}

static void print_heading(FILE *out, const struct pt_report *report, unsigned processes)
{
  const struct pt_model *model = report->model;
  fprintf(out, "palloc-trace: %s: %llu events", report->trace_dir,
          (unsigned long long)report->read.events);
  if (report->read.discarded_events != 0)
    fprintf(out, " (%llu DISCARDED by the tracer: figures are incomplete)",
            (unsigned long long)report->read.discarded_events);
  fprintf(out, ", %u process%s, %.6f s\n", processes, processes == 1 ? "" : "es",
          (double)(model->last_ts - model->first_ts) / 1e9);
}

void pt_report_summary(FILE *out, const struct pt_report *report)
{
  GPtrArray *processes = pt_model_processes(report->model);
  print_heading(out, report, processes->len);
  print_totals(out, report->model, &report->model->all);
  struct pt_report short_report = *report;
  short_report.top = MIN(report->top, 3);
  if (report->model->all.leaked_blocks != 0)
    print_ranking(out, &short_report, PT_RANK_LEAKED, "Largest leaks, by caller", "bytes");
  g_ptr_array_free(processes, TRUE);
}

void pt_report_text(FILE *out, const struct pt_report *report)
{
  GPtrArray *processes = pt_model_processes(report->model);
  print_heading(out, report, processes->len);
  fputs("\nSummary (all processes)\n", out);
  print_totals(out, report->model, &report->model->all);
  print_ranking(out, report, PT_RANK_LEAKED, "Leaks: blocks live at the end, by caller", "bytes");
  print_ranking(out, report, PT_RANK_ALLOCATIONS, "Hot spots: callers by allocations", "calls");
  print_ranking(out, report, PT_RANK_BYTES, "Hot spots: callers by bytes requested", "bytes");
  print_ranking(out, report, PT_RANK_TEMPORARIES,
                "Temporary allocations (freed before the thread allocated again), by caller",
                "blocks");
  print_size_histogram(out, &report->model->all);
  print_life_histogram(out, &report->model->all);
  print_misuse(out, report, processes);
  print_processes(out, report, processes);
  g_ptr_array_free(processes, TRUE);
}
