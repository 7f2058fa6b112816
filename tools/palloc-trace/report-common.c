/* report-common.c: rankings of callers and the formatting the reports share. */
#include "report.h"

#include <string.h>

uint64_t pt_ranking_value(const struct pt_caller *caller, enum pt_ranking ranking)
{
  switch (ranking) {
  case PT_RANK_LEAKED: return caller->leaked_bytes;
  case PT_RANK_ALLOCATIONS: return caller->allocations;
  case PT_RANK_BYTES: return caller->bytes;
  case PT_RANK_TEMPORARIES: return caller->temporaries;
  }
  return 0;
}

static enum pt_ranking sort_ranking; /* g_array_sort has no user data */

static gint compare_rows(gconstpointer a, gconstpointer b)
{
  const struct pt_row *x = a, *y = b;
  uint64_t vx = pt_ranking_value(x->caller, sort_ranking);
  uint64_t vy = pt_ranking_value(y->caller, sort_ranking);
  if (vx != vy)
    return vx < vy ? 1 : -1;
  if (x->process->vpid != y->process->vpid)
    return x->process->vpid < y->process->vpid ? -1 : 1;
  return (x->caller->addr > y->caller->addr) - (x->caller->addr < y->caller->addr);
}

GArray *pt_rank_callers(const struct pt_model *model, enum pt_ranking ranking)
{
  GArray *rows = g_array_new(FALSE, FALSE, sizeof(struct pt_row));
  GHashTableIter processes, callers;
  gpointer process, caller;
  g_hash_table_iter_init(&processes, model->processes);
  while (g_hash_table_iter_next(&processes, NULL, &process)) {
    g_hash_table_iter_init(&callers, ((struct pt_process *)process)->callers);
    while (g_hash_table_iter_next(&callers, NULL, &caller)) {
      if (pt_ranking_value(caller, ranking) == 0)
        continue;
      struct pt_row row = { process, caller };
      g_array_append_val(rows, row);
    }
  }
  sort_ranking = ranking;
  g_array_sort(rows, compare_rows);
  return rows;
}

void pt_format_bytes(char *text, size_t size, uint64_t bytes)
{
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double value = (double)bytes;
  unsigned unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    unit++;
  }
  if (unit == 0)
    snprintf(text, size, "%llu B", (unsigned long long)bytes);
  else
    snprintf(text, size, "%.1f %s", value, units[unit]);
}

void pt_format_symbol(char *text, size_t size, const struct pt_symbol *symbol, uint64_t addr)
{
  char where[512] = "";
  if (symbol->object != NULL)
    snprintf(where, sizeof where, " (%s+%#llx)", symbol->object,
             (unsigned long long)symbol->offset);
  else
    snprintf(where, sizeof where, " (%#llx)", (unsigned long long)addr);
  const char *function = symbol->function != NULL ? symbol->function : "??";
  if (symbol->file != NULL)
    snprintf(text, size, "%s at %s:%d%s", function, symbol->file, symbol->line, where);
  else
    snprintf(text, size, "%s%s", function, where);
}

double pt_seconds_since_start(const struct pt_model *model, uint64_t ts)
{
  return ts >= model->first_ts ? (double)(ts - model->first_ts) / 1e9 : 0.0;
}

double pt_heap_overhead(const struct pt_totals *totals)
{
  if (totals->peak_live == 0 || totals->heap_peak == 0)
    return 0.0;
  return (double)totals->heap_peak / (double)totals->peak_live;
}

double pt_fragmentation(const struct pt_totals *totals)
{
  if (totals->usable == 0)
    return 0.0;
  return 1.0 - (double)totals->requested / (double)totals->usable;
}
