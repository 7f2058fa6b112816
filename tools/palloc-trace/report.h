/* report.h: the reports palloc-trace prints from a finished model (text, short summary, JSON,
 * SVG chart), and the helpers they share (report-common.c). */
#ifndef PALLOC_TRACE_REPORT_H
#define PALLOC_TRACE_REPORT_H

#include <glib.h>
#include <stdio.h>

#include "model.h"
#include "symbols.h"
#include "trace-read.h"

struct pt_report {
  const char *trace_dir;
  struct pt_model *model;
  struct pt_read_result read;
  unsigned top; /* rows per ranking */
};

void pt_report_text(FILE *out, const struct pt_report *report);
void pt_report_summary(FILE *out, const struct pt_report *report);
void pt_report_json(FILE *out, const struct pt_report *report);
/* 0, or -1 with errno set (the file could not be written). */
int pt_report_svg(const char *path, const struct pt_report *report);

/* ---- Shared by the reports (report-common.c) ------------------------------------------- */

/* A caller of one process, for rankings across processes. */
struct pt_row {
  struct pt_process *process;
  const struct pt_caller *caller;
};

enum pt_ranking { PT_RANK_LEAKED, PT_RANK_ALLOCATIONS, PT_RANK_BYTES, PT_RANK_TEMPORARIES };

/* Callers whose ranking value is not 0, largest first (ties: by vpid, then address). Free with
 * g_array_free(rows, TRUE). */
GArray *pt_rank_callers(const struct pt_model *model, enum pt_ranking ranking);
uint64_t pt_ranking_value(const struct pt_caller *caller, enum pt_ranking ranking);

/* "1.5 MiB" */
void pt_format_bytes(char *text, size_t size, uint64_t bytes);
/* "leak_small at planted.c:42 (planted+0x1234)", "?? (libc.so.6+0x9e9aa)", "0x7f..." */
void pt_format_symbol(char *text, size_t size, const struct pt_symbol *symbol, uint64_t addr);
/* Seconds since the start of the trace. */
double pt_seconds_since_start(const struct pt_model *model, uint64_t ts);
/* The trace's heap overhead: heap peak / live peak (0 when either is 0). */
double pt_heap_overhead(const struct pt_totals *totals);
double pt_fragmentation(const struct pt_totals *totals);

#endif
