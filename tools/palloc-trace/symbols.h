/* symbols.h: return addresses of a process as function, file:line and object, from the
 * objects the trace says it mapped (statedump and dlopen events) and their debug
 * information (elfutils' libdwfl). */
#ifndef PALLOC_TRACE_SYMBOLS_H
#define PALLOC_TRACE_SYMBOLS_H

#include <stdint.h>

#include "model.h"

struct pt_symbol {
  const char *function; /* NULL when no symbol covers the address */
  const char *file;     /* source file, NULL without line information */
  int line;
  const char *object;   /* the mapped object's file name (no folder), NULL when unknown */
  uint64_t offset;      /* address - the object's base */
};

/* The symbol of addr in process (cached; valid until pt_symbols_free). A process without
 * the object in its own map (a forked child whose statedump was not recorded) borrows the
 * map of another process of the model that has one covering addr. */
const struct pt_symbol *pt_symbols_resolve(const struct pt_model *model,
                                           struct pt_process *process, uint64_t addr);
void pt_symbols_free(struct pt_model *model);

#endif
