/* report-json.c: the machine-readable report (--json), one JSON object on stdout.
 *
 * Top level: trace, events, discarded_events, duration_ns, calls {function: count},
 * failed_calls, allocations, requested_bytes, usable_bytes, internal_fragmentation,
 * peak_live_bytes (requested bytes), peak_live_time_ns (from the start), peak_heap_bytes,
 * heap_overhead, leaked_blocks, leaked_bytes (requested), leaked_usable_bytes,
 * temporary_allocations, double_frees, unknown_frees, inherited_frees, lost_frees; the
 * lists leaks, hot_by_calls, hot_by_bytes, temporaries (caller objects), size_histogram,
 * lifetime_histogram_ns, misuse; and processes (each with the same counters and threads).
 */
#include "report.h"

#include <string.h>

static void put_string(FILE *out, const char *text)
{
  if (text == NULL) {
    fputs("null", out);
    return;
  }
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
    if (*c == '"' || *c == '\\')
      fprintf(out, "\\%c", *c);
    else if (*c < 0x20)
      fprintf(out, "\\u%04x", *c);
    else
      fputc(*c, out);
  }
  fputc('"', out);
}

static void put_u64(FILE *out, const char *key, uint64_t value, const char *after)
{
  fprintf(out, "\"%s\": %llu%s", key, (unsigned long long)value, after);
}

static void put_function_counts(FILE *out, const char *key, const uint64_t *counts)
{
  fprintf(out, "\"%s\": {", key);
  for (int fn = 0; fn < PT_FN_COUNT; fn++)
    fprintf(out, "%s\"%s\": %llu", fn ? ", " : "", pt_function_names[fn],
            (unsigned long long)counts[fn]);
  fputs("},\n", out);
}

static void put_totals(FILE *out, const struct pt_model *model, const struct pt_totals *t)
{
  put_function_counts(out, "calls", t->calls);
  put_function_counts(out, "failed_calls", t->failed);
  put_u64(out, "allocations", t->allocations, ", ");
  put_u64(out, "requested_bytes", t->requested, ", ");
  put_u64(out, "usable_bytes", t->usable, ", ");
  fprintf(out, "\"internal_fragmentation\": %.6f,\n", pt_fragmentation(t));
  put_u64(out, "peak_live_bytes", t->peak_live, ", ");
  put_u64(out, "peak_live_time_ns", t->peak_ts - MIN(t->peak_ts, model->first_ts), ",\n");
  put_u64(out, "peak_heap_bytes", t->heap_peak, ", ");
  put_u64(out, "heap_dropped_bytes", t->heap_dropped, ", ");
  fprintf(out, "\"heap_overhead\": %.6f,\n", pt_heap_overhead(t));
  put_u64(out, "leaked_blocks", t->leaked_blocks, ", ");
  put_u64(out, "leaked_bytes", t->leaked_bytes, ", ");
  put_u64(out, "leaked_usable_bytes", t->leaked_usable, ",\n");
  put_u64(out, "temporary_allocations", t->temporaries, ", ");
  put_u64(out, "double_frees", t->double_frees, ", ");
  put_u64(out, "unknown_frees", t->unknown_frees, ", ");
  put_u64(out, "inherited_frees", t->inherited_frees, ", ");
  put_u64(out, "lost_frees", t->displaced, ",\n");
}

static void put_symbol(FILE *out, const struct pt_report *report, struct pt_process *process,
                       uint64_t addr)
{
  const struct pt_symbol *symbol = pt_symbols_resolve(report->model, process, addr);
  fprintf(out, "\"address\": \"%#llx\", \"function\": ", (unsigned long long)addr);
  put_string(out, symbol->function);
  fputs(", \"file\": ", out);
  put_string(out, symbol->file);
  fprintf(out, ", \"line\": %d, \"object\": ", symbol->line);
  put_string(out, symbol->object);
  fprintf(out, ", \"offset\": \"%#llx\"", (unsigned long long)symbol->offset);
}

static void put_ranking(FILE *out, const struct pt_report *report, const char *key,
                        enum pt_ranking ranking)
{
  GArray *rows = pt_rank_callers(report->model, ranking);
  fprintf(out, "\"%s\": [", key);
  for (guint i = 0; i < rows->len && i < report->top; i++) {
    const struct pt_row *row = &g_array_index(rows, struct pt_row, i);
    const struct pt_caller *c = row->caller;
    fprintf(out, "%s\n  {\"vpid\": %lld, ", i ? "," : "", (long long)row->process->vpid);
    put_symbol(out, report, row->process, c->addr);
    fprintf(out, ", \"allocations\": %llu, \"bytes\": %llu, \"temporaries\": %llu, "
                 "\"leaked_blocks\": %llu, \"leaked_bytes\": %llu}",
            (unsigned long long)c->allocations, (unsigned long long)c->bytes,
            (unsigned long long)c->temporaries, (unsigned long long)c->leaked_blocks,
            (unsigned long long)c->leaked_bytes);
  }
  fputs("],\n", out);
  g_array_free(rows, TRUE);
}

static void put_histograms(FILE *out, const struct pt_totals *t)
{
  fputs("\"size_histogram\": [", out);
  bool first = true;
  for (int b = 0; b < PT_SIZE_BUCKETS; b++) {
    if (t->size_hist[b] == 0)
      continue;
    uint64_t low, high;
    pt_size_bucket_bounds(b, &low, &high);
    fprintf(out, "%s{\"min\": %llu, \"max\": %llu, \"count\": %llu}", first ? "" : ", ",
            (unsigned long long)low, (unsigned long long)(high - 1),
            (unsigned long long)t->size_hist[b]);
    first = false;
  }
  fputs("],\n\"lifetime_histogram_ns\": [", out);
  first = true;
  for (int b = 0; b < PT_LIFE_BUCKETS; b++) {
    if (t->life_hist[b] == 0)
      continue;
    uint64_t low, high;
    pt_life_bucket_bounds(b, &low, &high);
    fprintf(out, "%s{\"min\": %llu, \"below\": ", first ? "" : ", ", (unsigned long long)low);
    if (high == UINT64_MAX)
      fputs("null", out);
    else
      fprintf(out, "%llu", (unsigned long long)high);
    fprintf(out, ", \"count\": %llu}", (unsigned long long)t->life_hist[b]);
    first = false;
  }
  fputs("],\n", out);
}

static void put_misuse(FILE *out, const struct pt_report *report, GPtrArray *processes)
{
  fputs("\"misuse\": [", out);
  bool first = true;
  for (guint p = 0; p < processes->len; p++) {
    struct pt_process *process = processes->pdata[p];
    for (guint i = 0; i < process->misuse->len; i++) {
      const struct pt_misuse *m = &g_array_index(process->misuse, struct pt_misuse, i);
      fprintf(out, "%s\n  {\"kind\": \"%s\", \"vpid\": %lld, \"tid\": %lld, \"ptr\": \"%#llx\", ",
              first ? "" : ",", m->is_double ? "double_free" : "unknown_free",
              (long long)process->vpid, (long long)m->tid, (unsigned long long)m->ptr);
      put_symbol(out, report, process, m->caller);
      if (m->is_double) {
        fputs(", \"first_freed_by\": {", out);
        put_symbol(out, report, process, m->first_free_caller);
        fputs("}", out);
      }
      fputs("}", out);
      first = false;
    }
  }
  fputs("],\n", out);
}

static void put_threads(FILE *out, const struct pt_process *process)
{
  GPtrArray *threads = pt_process_threads(process);
  fputs("\"threads\": [", out);
  for (guint i = 0; i < threads->len; i++) {
    const struct pt_thread *t = threads->pdata[i];
    fprintf(out, "%s{\"tid\": %lld, \"allocations\": %llu, \"bytes\": %llu, \"frees\": %llu, "
                 "\"temporary_allocations\": %llu, \"peak_live_bytes\": %llu}",
            i ? ", " : "", (long long)t->tid, (unsigned long long)t->allocations,
            (unsigned long long)t->bytes, (unsigned long long)t->frees,
            (unsigned long long)t->temporaries, (unsigned long long)t->peak_live);
  }
  fputs("]}", out);
  g_ptr_array_free(threads, TRUE);
}

static void put_processes(FILE *out, const struct pt_report *report, GPtrArray *processes)
{
  fputs("\"processes\": [", out);
  for (guint p = 0; p < processes->len; p++) {
    const struct pt_process *process = processes->pdata[p];
    fprintf(out, "%s\n{\"vpid\": %lld, \"procname\": ", p ? "," : "", (long long)process->vpid);
    put_string(out, process->procname);
    fputs(", ", out);
    put_u64(out, "duration_ns", process->last_ts - process->first_ts, ",\n");
    put_totals(out, report->model, &process->totals);
    put_threads(out, process);
  }
  fputs("]\n", out);
}

void pt_report_json(FILE *out, const struct pt_report *report)
{
  const struct pt_model *model = report->model;
  GPtrArray *processes = pt_model_processes(model);
  fputs("{\"trace\": ", out);
  put_string(out, report->trace_dir);
  fputs(", ", out);
  put_u64(out, "events", report->read.events, ", ");
  put_u64(out, "discarded_events", report->read.discarded_events, ", ");
  put_u64(out, "duration_ns", model->last_ts - model->first_ts, ",\n");
  put_totals(out, model, &model->all);
  put_ranking(out, report, "leaks", PT_RANK_LEAKED);
  put_ranking(out, report, "hot_by_calls", PT_RANK_ALLOCATIONS);
  put_ranking(out, report, "hot_by_bytes", PT_RANK_BYTES);
  put_ranking(out, report, "temporaries", PT_RANK_TEMPORARIES);
  put_histograms(out, &model->all);
  put_misuse(out, report, processes);
  put_processes(out, report, processes);
  fputs("}\n", out);
  g_ptr_array_free(processes, TRUE);
}
