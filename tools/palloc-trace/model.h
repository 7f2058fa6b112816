/* model.h: what the trace says about each process's memory, built event by event.
 *
 * One struct pt_process per vpid holds a hash table of every address it was handed (live or
 * freed: freed records stay, so that a second free is recognised and the record is reused
 * when the address comes back), its callers, its threads and the objects it mapped. The
 * struct pt_model sums the processes. Sizes are requested bytes unless a name says usable.
 *
 * Invariants (pt_model_finish asserts M1 and M2 at the end):
 *   M1  totals.live_blocks = number of live records, totals.live_bytes = sum of their sizes;
 *   M2  totals.peak_live >= totals.live_bytes at every step; all.live_bytes = sum over
 *       processes;
 *   M3  a record is in `displaced` only while another record of the same address is live.
 */
#ifndef PALLOC_TRACE_MODEL_H
#define PALLOC_TRACE_MODEL_H

#include <glib.h>
#include <stdint.h>

#include "event.h"

#define PT_SIZE_BUCKETS 65 /* 0, then [2^(k-1), 2^k) for k = 1..64 */
#define PT_LIFE_BUCKETS 10 /* < 1 us, < 10 us, ..., < 10^8 us (100 s), longer */

/* Counters of one process, of one thread's share, or of the whole trace. */
struct pt_totals {
  uint64_t calls[PT_FN_COUNT];  /* every call traced, failed ones included */
  uint64_t failed[PT_FN_COUNT]; /* calls that returned no block */
  uint64_t allocations;         /* blocks handed out (realloc that returned a block included) */
  uint64_t requested, usable;   /* their bytes: asked for, and usable */
  uint64_t live_bytes, live_usable, live_blocks;
  uint64_t peak_live, peak_ts;  /* highest live_bytes, and when it was first reached */
  uint64_t heap, heap_peak, heap_peak_ts; /* bytes mapped from the OS (heap events) */
  uint64_t heap_dropped;        /* bytes of pages given back with madvise (still mapped) */
  uint64_t heap_events, flushes;
  uint64_t temporaries;         /* blocks freed before their thread allocated again */
  uint64_t unknown_frees;       /* frees (or reallocs) of addresses not live and never seen */
  uint64_t inherited_frees;     /* unknown frees of blocks another process holds (fork) */
  uint64_t double_frees;        /* frees of addresses already freed, not handed out again */
  uint64_t displaced;           /* an address handed out while still live (a lost free) */
  uint64_t leaked_blocks, leaked_bytes, leaked_usable; /* live at the end (pt_model_finish) */
  uint64_t size_hist[PT_SIZE_BUCKETS];
  uint64_t life_hist[PT_LIFE_BUCKETS];
};

/* Everything done from one return address. */
struct pt_caller {
  uint64_t addr;
  uint64_t allocations, bytes, temporaries;
  uint64_t leaked_blocks, leaked_bytes;
  uint64_t bad_frees; /* unknown and double frees made from here */
};

struct pt_thread {
  int64_t tid;
  uint64_t serial;    /* allocations it made so far (the temporaries' clock) */
  uint64_t allocations, bytes, frees, temporaries;
  int64_t live_bytes; /* its own blocks still live, wherever freed */
  uint64_t peak_live;
};

/* One mapped object, from the statedump or a dlopen. */
struct pt_module {
  uint64_t base, size;
  bool is_pic;
  char *path;
};

/* A bad free, kept for the report: the first PT_MISUSE_PER_CALLER of each caller, so that
 * the many frees of one caller (e.g. LTTng-UST freeing, in a forked child, what the parent
 * allocated before tracing) do not hide the others, up to PT_MISUSE_EXAMPLES per process. */
#define PT_MISUSE_PER_CALLER 4
#define PT_MISUSE_EXAMPLES 1024
struct pt_misuse {
  bool is_double;
  uint64_t ptr, caller, ts;
  int64_t tid;
  uint64_t first_free_caller; /* double frees: who freed it first */
  uint64_t alloc_caller;      /* double frees: who allocated it */
};

struct pt_process {
  int64_t vpid;
  char *procname;        /* of the main thread (vtid = vpid) once seen */
  bool has_main_procname;
  struct pt_totals totals;
  GHashTable *blocks;    /* address -> struct pt_block, live or freed */
  GHashTable *displaced; /* address -> struct pt_block, older live block of a reused address */
  GHashTable *callers;   /* address -> struct pt_caller */
  GHashTable *threads;   /* tid -> struct pt_thread */
  struct pt_thread *last_thread;
  GArray *modules;       /* struct pt_module */
  GArray *misuse;        /* struct pt_misuse */
  uint64_t first_ts, last_ts;
  uint64_t lost_displaced; /* displaced blocks given up (see model.c) */
  void *symbols;         /* symbols.c's cache for this process */
};

/* A point of the live-bytes / heap chart: the highest values over a stretch of events. */
struct pt_point {
  uint64_t ts, live, heap;
};

struct pt_model {
  struct pt_totals all;   /* calls and bytes summed; live and heap summed at each moment */
  GHashTable *processes;  /* vpid -> struct pt_process */
  struct pt_process *last_process;
  uint64_t first_ts, last_ts, events;
  GArray *timeline;       /* struct pt_point, at most PT_TIMELINE_MAX */
  uint64_t per_point, pending_count;
  struct pt_point pending;
};

void pt_model_init(struct pt_model *model);
void pt_model_add(struct pt_model *model, const struct pt_event *event);
/* After the last event: counts the leaks, closes the chart. */
void pt_model_finish(struct pt_model *model);
void pt_model_free(struct pt_model *model);

/* The processes, by vpid. g_ptr_array_free when done (not the processes). */
GPtrArray *pt_model_processes(const struct pt_model *model);
/* A process's callers (struct pt_caller *) sorted by compare. */
GPtrArray *pt_process_callers(const struct pt_process *process, GCompareFunc compare);
/* A process's threads (struct pt_thread *), by tid. */
GPtrArray *pt_process_threads(const struct pt_process *process);

/* Bucket bounds for the reports: [low, high) in bytes or in nanoseconds. */
void pt_size_bucket_bounds(int bucket, uint64_t *low, uint64_t *high);
void pt_life_bucket_bounds(int bucket, uint64_t *low, uint64_t *high);

#endif
