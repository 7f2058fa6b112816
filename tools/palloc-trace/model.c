/* model.c: replays the events into the per-process model of model.h.
 *
 * Event order: trace-read.c delivers events in timestamp order. Within a thread that is the
 * order of the calls. Across threads palloc records a free before it releases the block and
 * an allocation after it returns, so an address's free precedes its next allocation; the one
 * exception is realloc, which reports the old block of a move after the call: another thread
 * may have been handed that address in between. Such an older live record is kept aside in
 * `displaced`, where the late realloc finds it first.
 *
 * Temporary allocation (heaptrack's definition): a block freed by the thread that allocated
 * it before that thread allocated anything else. Each thread counts its allocations
 * (`serial`); a block remembers the count it was given.
 */
#include "model.h"

#include <assert.h>
#include <string.h>

#include "palloc-trace-hooks.h"

#define PT_TIMELINE_MAX 4096

struct pt_block {
  uint64_t size, usable, caller, ts, serial;
  uint64_t freed_by; /* caller of the free, once freed */
  int64_t tid;
  bool is_live;
};

/* ---- Hash tables keyed by 64-bit integers (addresses, ids) ------------------------------- */

static guint hash_u64(gconstpointer key)
{
  uint64_t x = (uint64_t)(uintptr_t)key;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 29;
  return (guint)x;
}

static GHashTable *u64_table(GDestroyNotify free_value)
{
  return g_hash_table_new_full(hash_u64, g_direct_equal, NULL, free_value);
}

static inline gpointer key_of(uint64_t value) { return (gpointer)(uintptr_t)value; }

/* ---- Processes, threads, callers ----------------------------------------------------------- */

static void module_clear(gpointer data) { g_free(((struct pt_module *)data)->path); }

static struct pt_process *process_new(int64_t vpid, const struct pt_event *event)
{
  struct pt_process *process = g_new0(struct pt_process, 1);
  process->vpid = vpid;
  process->procname = g_strdup(event->procname != NULL ? event->procname : "?");
  process->blocks = u64_table(g_free);
  process->displaced = u64_table(g_free);
  process->callers = u64_table(g_free);
  process->threads = u64_table(g_free);
  process->modules = g_array_new(FALSE, TRUE, sizeof(struct pt_module));
  g_array_set_clear_func(process->modules, module_clear);
  process->misuse = g_array_new(FALSE, TRUE, sizeof(struct pt_misuse));
  process->first_ts = event->ts;
  return process;
}

static void process_free(gpointer data)
{
  struct pt_process *process = data;
  g_free(process->procname);
  g_hash_table_destroy(process->blocks);
  g_hash_table_destroy(process->displaced);
  g_hash_table_destroy(process->callers);
  g_hash_table_destroy(process->threads);
  g_array_free(process->modules, TRUE);
  g_array_free(process->misuse, TRUE);
  g_free(process);
}

static struct pt_process *process_of(struct pt_model *model, const struct pt_event *event)
{
  struct pt_process *process = model->last_process;
  if (process != NULL && process->vpid == event->vpid && process->has_main_procname)
    return process;
  process = g_hash_table_lookup(model->processes, key_of((uint64_t)event->vpid));
  if (process == NULL) {
    process = process_new(event->vpid, event);
    g_hash_table_insert(model->processes, key_of((uint64_t)event->vpid), process);
  }
  bool names_process = event->kind == PT_EV_PROCNAME || event->vtid == event->vpid;
  if (!process->has_main_procname && names_process && event->procname != NULL) {
    g_free(process->procname); /* other threads may be named otherwise (LTTng's own) */
    process->procname = g_strdup(event->procname);
    process->has_main_procname = true;
  }
  model->last_process = process;
  return process;
}

static struct pt_thread *thread_of(struct pt_process *process, int64_t tid)
{
  struct pt_thread *thread = process->last_thread;
  if (thread != NULL && thread->tid == tid)
    return thread;
  thread = g_hash_table_lookup(process->threads, key_of((uint64_t)tid));
  if (thread == NULL) {
    thread = g_new0(struct pt_thread, 1);
    thread->tid = tid;
    g_hash_table_insert(process->threads, key_of((uint64_t)tid), thread);
  }
  process->last_thread = thread;
  return thread;
}

static struct pt_caller *caller_of(struct pt_process *process, uint64_t addr)
{
  struct pt_caller *caller = g_hash_table_lookup(process->callers, key_of(addr));
  if (caller == NULL) {
    caller = g_new0(struct pt_caller, 1);
    caller->addr = addr;
    g_hash_table_insert(process->callers, key_of(addr), caller);
  }
  return caller;
}

/* ---- The chart: at most PT_TIMELINE_MAX points, each the highest values of a stretch ------ */

static void timeline_push(struct pt_model *model)
{
  g_array_append_val(model->timeline, model->pending);
  model->pending_count = 0;
  if (model->timeline->len < PT_TIMELINE_MAX)
    return;
  struct pt_point *points = (struct pt_point *)(void *)model->timeline->data;
  for (guint i = 0; i < PT_TIMELINE_MAX / 2; i++) {
    struct pt_point a = points[2 * i], b = points[2 * i + 1];
    points[i] = (struct pt_point){ a.ts, MAX(a.live, b.live), MAX(a.heap, b.heap) };
  }
  g_array_set_size(model->timeline, PT_TIMELINE_MAX / 2);
  model->per_point *= 2;
}

static void timeline_note(struct pt_model *model, uint64_t ts)
{
  struct pt_point *pending = &model->pending;
  if (model->pending_count == 0) {
    *pending = (struct pt_point){ ts, model->all.live_bytes, model->all.heap };
  } else {
    pending->live = MAX(pending->live, model->all.live_bytes);
    pending->heap = MAX(pending->heap, model->all.heap);
  }
  if (++model->pending_count >= model->per_point)
    timeline_push(model);
}

/* ---- Live bytes ------------------------------------------------------------------------ */

static void totals_add_live(struct pt_totals *totals, const struct pt_block *block, uint64_t ts)
{
  totals->live_bytes += block->size;
  totals->live_usable += block->usable;
  totals->live_blocks++;
  if (totals->live_bytes > totals->peak_live) {
    totals->peak_live = totals->live_bytes;
    totals->peak_ts = ts;
  }
}

static void totals_remove_live(struct pt_totals *totals, const struct pt_block *block)
{
  totals->live_bytes -= block->size;
  totals->live_usable -= block->usable;
  totals->live_blocks--;
}

static int size_bucket(uint64_t size)
{
  return size == 0 ? 0 : 64 - __builtin_clzll(size);
}

static int life_bucket(uint64_t ns)
{
  int bucket = 0;
  for (uint64_t limit = 1000; bucket < PT_LIFE_BUCKETS - 1 && ns >= limit; limit *= 10)
    bucket++;
  return bucket;
}

static void thread_add_live(struct pt_process *process, int64_t tid, int64_t bytes)
{
  struct pt_thread *thread = thread_of(process, tid);
  thread->live_bytes += bytes;
  if (thread->live_bytes > 0 && (uint64_t)thread->live_bytes > thread->peak_live)
    thread->peak_live = (uint64_t)thread->live_bytes;
}

/* ---- Allocations and frees ------------------------------------------------------------- */

static void note_misuse(struct pt_process *process, const struct pt_event *event,
                        const struct pt_block *freed, uint64_t ptr)
{
  struct pt_totals *totals = &process->totals;
  if (freed != NULL)
    totals->double_frees++;
  else
    totals->unknown_frees++;
  uint64_t caller_bad_frees = ++caller_of(process, event->caller)->bad_frees;
  if (caller_bad_frees > PT_MISUSE_PER_CALLER || process->misuse->len >= PT_MISUSE_EXAMPLES)
    return;
  struct pt_misuse misuse = {
    .is_double = freed != NULL, .ptr = ptr, .caller = event->caller, .ts = event->ts,
    .tid = event->vtid, .first_free_caller = freed ? freed->freed_by : 0,
    .alloc_caller = freed ? freed->caller : 0,
  };
  g_array_append_val(process->misuse, misuse);
}

/* The address is handed out again while its block is live: a realloc's old block reported
 * late, or a lost free. The block waits in `displaced`; one already waiting there is given
 * up for lost (no longer live, counted in lost_displaced). */
static void displace(struct pt_model *model, struct pt_process *process, uint64_t ptr,
                     struct pt_block *block)
{
  struct pt_block *waiting = g_hash_table_lookup(process->displaced, key_of(ptr));
  if (waiting != NULL) {
    totals_remove_live(&process->totals, waiting);
    totals_remove_live(&model->all, waiting);
    thread_add_live(process, waiting->tid, -(int64_t)waiting->size);
    process->lost_displaced++;
  }
  g_hash_table_steal(process->blocks, key_of(ptr));
  g_hash_table_replace(process->displaced, key_of(ptr), block);
}

static void add_block(struct pt_model *model, struct pt_process *process,
                      const struct pt_event *event)
{
  struct pt_thread *thread = thread_of(process, event->vtid);
  thread->serial++;
  struct pt_block *block = g_hash_table_lookup(process->blocks, key_of(event->ptr));
  if (block != NULL && block->is_live) {
    displace(model, process, event->ptr, block);
    block = NULL;
  }
  if (block == NULL) {
    block = g_new(struct pt_block, 1);
    g_hash_table_insert(process->blocks, key_of(event->ptr), block);
  }
  *block = (struct pt_block){
    .size = event->size, .usable = event->usable, .caller = event->caller, .ts = event->ts,
    .serial = thread->serial, .tid = event->vtid, .is_live = true,
  };
  struct pt_totals *totals = &process->totals;
  totals->allocations++;
  totals->requested += event->size;
  totals->usable += event->usable;
  totals->size_hist[size_bucket(event->size)]++;
  thread->allocations++;
  thread->bytes += event->size;
  struct pt_caller *caller = caller_of(process, event->caller);
  caller->allocations++;
  caller->bytes += event->size;
  totals_add_live(totals, block, event->ts);
  totals_add_live(&model->all, block, event->ts);
  thread_add_live(process, block->tid, (int64_t)block->size);
  timeline_note(model, event->ts);
}

/* The block ends (a free, or the old block of a realloc); counts its lifetime. */
static void end_block(struct pt_model *model, struct pt_process *process,
                      struct pt_block *block, const struct pt_event *event)
{
  block->is_live = false;
  block->freed_by = event->caller;
  totals_remove_live(&process->totals, block);
  totals_remove_live(&model->all, block);
  thread_add_live(process, block->tid, -(int64_t)block->size);
  uint64_t life = event->ts > block->ts ? event->ts - block->ts : 0;
  process->totals.life_hist[life_bucket(life)]++;
  timeline_note(model, event->ts);
}

/* A block this process never saw that another process allocated at the same address before
 * this process's first event: a forked child freeing what it inherited (LTTng-UST has no
 * parent-pid context to say so; the parent may have freed its own copy since). */
static bool is_inherited(const struct pt_model *model, const struct pt_process *process,
                         uint64_t ptr)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, model->processes);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    const struct pt_process *other = value;
    const struct pt_block *block =
        other != process ? g_hash_table_lookup(other->blocks, key_of(ptr)) : NULL;
    if (block != NULL && block->ts <= process->first_ts)
      return true;
  }
  return false;
}

/* A free (or realloc) of ptr that matches no live block of the process. */
static void bad_free(struct pt_model *model, struct pt_process *process,
                     const struct pt_event *event, struct pt_block *block, uint64_t ptr)
{
  if (block == NULL && is_inherited(model, process, ptr))
    process->totals.inherited_frees++;
  else
    note_misuse(process, event, block, ptr);
}

static void free_block(struct pt_model *model, struct pt_process *process,
                       const struct pt_event *event, uint64_t ptr)
{
  struct pt_block *block = g_hash_table_lookup(process->blocks, key_of(ptr));
  if (block == NULL || !block->is_live) {
    bad_free(model, process, event, block, ptr);
    return;
  }
  struct pt_thread *thread = thread_of(process, event->vtid);
  thread->frees++;
  if (block->tid == event->vtid && block->serial == thread->serial) {
    process->totals.temporaries++;
    thread->temporaries++;
    caller_of(process, block->caller)->temporaries++;
  }
  end_block(model, process, block, event);
}

/* realloc's old block: the displaced one first (see the top of the file). */
static void end_old_block(struct pt_model *model, struct pt_process *process,
                          const struct pt_event *event)
{
  struct pt_block *block = g_hash_table_lookup(process->displaced, key_of(event->in_ptr));
  if (block != NULL) {
    end_block(model, process, block, event);
    g_hash_table_remove(process->displaced, key_of(event->in_ptr));
    return;
  }
  block = g_hash_table_lookup(process->blocks, key_of(event->in_ptr));
  if (block == NULL || !block->is_live)
    bad_free(model, process, event, block, event->in_ptr);
  else
    end_block(model, process, block, event);
}

static void add_realloc(struct pt_model *model, struct pt_process *process,
                        const struct pt_event *event)
{
  if (event->in_ptr == 0) { /* realloc(NULL, n): malloc(n) */
    if (event->ptr != 0)
      add_block(model, process, event);
    else
      process->totals.failed[event->function]++;
  } else if (event->ptr == 0 && event->size == 0) { /* realloc(p, 0): free(p) */
    free_block(model, process, event, event->in_ptr);
  } else if (event->ptr == 0) { /* failed: in_ptr still live */
    process->totals.failed[event->function]++;
  } else {
    end_old_block(model, process, event);
    add_block(model, process, event);
  }
}

static void add_call(struct pt_model *model, struct pt_process *process,
                     const struct pt_event *event)
{
  enum pt_function fn = event->function;
  process->totals.calls[fn]++;
  if (pt_function_is_free(fn)) {
    if (event->ptr != 0)
      free_block(model, process, event, event->ptr);
  } else if (pt_function_is_realloc(fn)) {
    add_realloc(model, process, event);
  } else if (event->ptr == 0) {
    process->totals.failed[fn]++;
  } else {
    add_block(model, process, event);
  }
}

/* ---- Heap and module events -------------------------------------------------------------- */

static void heap_change(struct pt_totals *totals, const struct pt_event *event, bool grow)
{
  totals->heap_events++;
  if (grow) {
    totals->heap += event->len;
  } else if (event->how == PALLOC_HEAP_MADVISE) {
    totals->heap_dropped += event->len;
  } else {
    totals->heap -= MIN(event->len, totals->heap);
  }
  if (totals->heap > totals->heap_peak) {
    totals->heap_peak = totals->heap;
    totals->heap_peak_ts = event->ts;
  }
}

static void add_heap(struct pt_model *model, struct pt_process *process,
                     const struct pt_event *event)
{
  bool grow = event->kind == PT_EV_HEAP_GROW;
  heap_change(&process->totals, event, grow);
  heap_change(&model->all, event, grow);
  timeline_note(model, event->ts);
}

static void add_module(struct pt_process *process, const struct pt_event *event)
{
  if (event->path == NULL || event->memsz == 0)
    return;
  for (guint i = 0; i < process->modules->len; i++)
    if (g_array_index(process->modules, struct pt_module, i).base == event->baddr)
      return; /* the statedump runs again after a fork: same objects */
  struct pt_module module = {
    .base = event->baddr, .size = event->memsz, .is_pic = event->is_pic,
    .path = g_strdup(event->path),
  };
  g_array_append_val(process->modules, module);
}

/* ---- The model ----------------------------------------------------------------------------- */

void pt_model_init(struct pt_model *model)
{
  memset(model, 0, sizeof *model);
  model->processes = u64_table(process_free);
  model->timeline = g_array_new(FALSE, TRUE, sizeof(struct pt_point));
  model->per_point = 1;
}

void pt_model_add(struct pt_model *model, const struct pt_event *event)
{
  if (model->events++ == 0)
    model->first_ts = event->ts;
  model->last_ts = MAX(model->last_ts, event->ts);
  struct pt_process *process = process_of(model, event);
  process->last_ts = MAX(process->last_ts, event->ts);
  switch (event->kind) {
  case PT_EV_CALL: add_call(model, process, event); break;
  case PT_EV_HEAP_GROW:
  case PT_EV_HEAP_SHRINK: add_heap(model, process, event); break;
  case PT_EV_FLUSH: process->totals.flushes++; break;
  case PT_EV_MODULE: add_module(process, event); break;
  default: break;
  }
}

/* Sums a process's counters into the whole trace's (live and heap are summed as they go). */
static void totals_merge(struct pt_totals *all, const struct pt_totals *one)
{
  for (int fn = 0; fn < PT_FN_COUNT; fn++) {
    all->calls[fn] += one->calls[fn];
    all->failed[fn] += one->failed[fn];
  }
  all->allocations += one->allocations;
  all->requested += one->requested;
  all->usable += one->usable;
  all->heap_dropped += one->heap_dropped;
  all->flushes += one->flushes;
  all->temporaries += one->temporaries;
  all->unknown_frees += one->unknown_frees;
  all->inherited_frees += one->inherited_frees;
  all->double_frees += one->double_frees;
  all->displaced += one->displaced;
  all->leaked_blocks += one->leaked_blocks;
  all->leaked_bytes += one->leaked_bytes;
  all->leaked_usable += one->leaked_usable;
  for (int b = 0; b < PT_SIZE_BUCKETS; b++)
    all->size_hist[b] += one->size_hist[b];
  for (int b = 0; b < PT_LIFE_BUCKETS; b++)
    all->life_hist[b] += one->life_hist[b];
}

static void count_leaks(struct pt_process *process)
{
  struct pt_totals *totals = &process->totals;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, process->blocks);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    const struct pt_block *block = value;
    if (!block->is_live)
      continue;
    totals->leaked_blocks++;
    totals->leaked_bytes += block->size;
    totals->leaked_usable += block->usable;
    struct pt_caller *caller = caller_of(process, block->caller);
    caller->leaked_blocks++;
    caller->leaked_bytes += block->size;
  }
  /* displaced blocks (a lost free) are live for the counters but not reported as leaks */
  uint64_t displaced_bytes = 0;
  g_hash_table_iter_init(&iter, process->displaced);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    displaced_bytes += ((const struct pt_block *)value)->size;
  totals->displaced = g_hash_table_size(process->displaced) + process->lost_displaced;
  /* M1: every live record counted once, with its size */
  assert(totals->leaked_blocks + g_hash_table_size(process->displaced) == totals->live_blocks);
  assert(totals->leaked_bytes + displaced_bytes == totals->live_bytes);
}

void pt_model_finish(struct pt_model *model)
{
  GHashTableIter iter;
  gpointer value;
  uint64_t live_sum = 0;
  g_hash_table_iter_init(&iter, model->processes);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    struct pt_process *process = value;
    count_leaks(process);
    totals_merge(&model->all, &process->totals);
    live_sum += process->totals.live_bytes;
    assert(process->totals.peak_live >= process->totals.live_bytes); /* M2 */
  }
  assert(live_sum == model->all.live_bytes); /* M2 */
  if (model->pending_count > 0)
    timeline_push(model);
  model->pending = (struct pt_point){ model->last_ts, model->all.live_bytes, model->all.heap };
  g_array_append_val(model->timeline, model->pending);
}

void pt_model_free(struct pt_model *model)
{
  g_hash_table_destroy(model->processes);
  g_array_free(model->timeline, TRUE);
}

/* ---- Views for the reports ----------------------------------------------------------------- */

static gint by_vpid(gconstpointer a, gconstpointer b)
{
  const struct pt_process *x = *(struct pt_process *const *)a;
  const struct pt_process *y = *(struct pt_process *const *)b;
  return (x->vpid > y->vpid) - (x->vpid < y->vpid);
}

static GPtrArray *values_sorted(GHashTable *table, GCompareFunc compare)
{
  GPtrArray *values = g_ptr_array_sized_new(g_hash_table_size(table));
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, table);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    g_ptr_array_add(values, value);
  g_ptr_array_sort(values, compare);
  return values;
}

GPtrArray *pt_model_processes(const struct pt_model *model)
{
  return values_sorted(model->processes, by_vpid);
}

GPtrArray *pt_process_callers(const struct pt_process *process, GCompareFunc compare)
{
  return values_sorted(process->callers, compare);
}

static gint by_tid(gconstpointer a, gconstpointer b)
{
  const struct pt_thread *x = *(struct pt_thread *const *)a;
  const struct pt_thread *y = *(struct pt_thread *const *)b;
  return (x->tid > y->tid) - (x->tid < y->tid);
}

GPtrArray *pt_process_threads(const struct pt_process *process)
{
  return values_sorted(process->threads, by_tid);
}

void pt_size_bucket_bounds(int bucket, uint64_t *low, uint64_t *high)
{
  *low = bucket == 0 ? 0 : 1ULL << (bucket - 1);
  *high = bucket == 0 ? 1 : bucket == 64 ? UINT64_MAX : 1ULL << bucket;
}

void pt_life_bucket_bounds(int bucket, uint64_t *low, uint64_t *high)
{
  uint64_t limit = 1000;
  for (int i = 0; i < bucket; i++)
    limit *= 10;
  *low = bucket == 0 ? 0 : limit / 10;
  *high = bucket == PT_LIFE_BUCKETS - 1 ? UINT64_MAX : limit;
}
