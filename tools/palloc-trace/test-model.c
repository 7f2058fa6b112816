/* test-model.c: the model (model.c) fed with made-up events, for the cases a real trace shows
 * rarely or never on demand: the late old block of a realloc that moved while another thread
 * got its address, a lost free, frees inherited through fork, and the bookkeeping of
 * temporaries, peaks and the heap. TAP output; run by make check. */
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "palloc-trace-hooks.h"

static int test_count, failed_count;

static void check(bool ok, const char *what)
{
  test_count++;
  if (!ok)
    failed_count++;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", test_count, what);
}

static uint64_t clock_ns;

static void call(struct pt_model *model, int64_t pid, int64_t tid, enum pt_function fn,
                 uint64_t ptr, uint64_t in_ptr, uint64_t size, uint64_t caller)
{
  struct pt_event event = {
    .kind = PT_EV_CALL, .function = fn, .ts = clock_ns += 1000, .vpid = pid, .vtid = tid,
    .ptr = ptr, .in_ptr = in_ptr, .size = size, .usable = size + 8, .caller = caller,
  };
  pt_model_add(model, &event);
}

static void heap(struct pt_model *model, int64_t pid, bool grow, int64_t how, uint64_t len)
{
  struct pt_event event = {
    .kind = grow ? PT_EV_HEAP_GROW : PT_EV_HEAP_SHRINK, .ts = clock_ns += 1000, .vpid = pid,
    .vtid = pid, .len = len, .how = how,
  };
  pt_model_add(model, &event);
}

static struct pt_process *process(struct pt_model *model, int64_t pid)
{
  return g_hash_table_lookup(model->processes, (gpointer)(uintptr_t)pid);
}

static struct pt_caller *caller(struct pt_model *model, int64_t pid, uint64_t addr)
{
  return g_hash_table_lookup(process(model, pid)->callers, (gpointer)(uintptr_t)addr);
}

static void test_temporaries_and_misuse(void)
{
  struct pt_model model;
  pt_model_init(&model);
  call(&model, 1, 1, PT_FN_MALLOC, 0x1000, 0, 10, 0xa);  /* freed at once: temporary */
  call(&model, 1, 1, PT_FN_FREE, 0x1000, 0, 0, 0xf);
  call(&model, 1, 1, PT_FN_MALLOC, 0x2000, 0, 20, 0xb);  /* another allocation follows */
  call(&model, 1, 1, PT_FN_MALLOC, 0x3000, 0, 30, 0xc);  /* freed before any other: temporary */
  call(&model, 1, 2, PT_FN_MALLOC, 0x4000, 0, 40, 0xd);  /* another thread's allocation */
  call(&model, 1, 1, PT_FN_FREE, 0x2000, 0, 0, 0xf);
  call(&model, 1, 1, PT_FN_FREE, 0x3000, 0, 0, 0xf);
  call(&model, 1, 1, PT_FN_FREE, 0x2000, 0, 0, 0xe);     /* double free */
  call(&model, 1, 1, PT_FN_FREE, 0x9000, 0, 0, 0xe);     /* never allocated */
  call(&model, 1, 1, PT_FN_MALLOC, 0, 0, 1ULL << 62, 0xb); /* failed */
  pt_model_finish(&model);
  struct pt_totals *t = &process(&model, 1)->totals;
  check(t->temporaries == 2 && caller(&model, 1, 0xa)->temporaries == 1 &&
            caller(&model, 1, 0xc)->temporaries == 1 && caller(&model, 1, 0xb)->temporaries == 0,
        "temporaries: freed before the same thread allocated again, whatever other threads did");
  check(t->double_frees == 1 && t->unknown_frees == 1 && process(&model, 1)->misuse->len == 2,
        "a double free and a free of an unknown pointer");
  const struct pt_misuse *m = &g_array_index(process(&model, 1)->misuse, struct pt_misuse, 0);
  check(m->is_double && m->first_free_caller == 0xf && m->alloc_caller == 0xb,
        "the double free names the first free's caller and the allocation's");
  check(t->failed[PT_FN_MALLOC] == 1 && t->calls[PT_FN_MALLOC] == 5 && t->allocations == 4,
        "a failed malloc is a call, not an allocation");
  check(t->peak_live == 10 + 20 + 30 + 40 - 10 && t->leaked_blocks == 1 && t->leaked_bytes == 40,
        "peak live bytes and the leak left");
  pt_model_free(&model);
}

static void test_realloc(void)
{
  struct pt_model model;
  pt_model_init(&model);
  call(&model, 1, 1, PT_FN_MALLOC, 0x1000, 0, 100, 0xa);
  /* thread 1 reallocs 0x1000 -> 0x5000; thread 2 gets 0x1000 before the realloc's event */
  call(&model, 1, 2, PT_FN_MALLOC, 0x1000, 0, 7, 0xb);
  call(&model, 1, 1, PT_FN_REALLOC, 0x5000, 0x1000, 300, 0xc);
  call(&model, 1, 2, PT_FN_FREE, 0x1000, 0, 0, 0xd);
  call(&model, 1, 1, PT_FN_REALLOC, 0x5000, 0x5000, 400, 0xc);  /* in place */
  call(&model, 1, 1, PT_FN_REALLOC, 0, 0x7000, 50, 0xc);        /* failed: nothing changes */
  call(&model, 1, 1, PT_FN_REALLOC, 0x6000, 0, 60, 0xe);        /* realloc(NULL, n) */
  call(&model, 1, 1, PT_FN_REALLOC, 0, 0x6000, 0, 0xe);         /* realloc(p, 0): a free */
  pt_model_finish(&model);
  struct pt_totals *t = &process(&model, 1)->totals;
  check(t->leaked_blocks == 1 && t->leaked_bytes == 400 && t->displaced == 0,
        "realloc's late old block: the other thread's block at that address is its own");
  check(t->double_frees == 0 && t->unknown_frees == 0 && t->failed[PT_FN_REALLOC] == 1,
        "no misuse seen in a realloc race, a failed realloc counted");
  check(t->peak_live == 400 + 60 && caller(&model, 1, 0xc)->allocations == 2,
        "peak with the in-place realloc; each realloc that returns a block is an allocation");
  pt_model_free(&model);
}

static void test_lost_free_and_fork(void)
{
  struct pt_model model;
  pt_model_init(&model);
  call(&model, 1, 1, PT_FN_MALLOC, 0x1000, 0, 10, 0xa);
  call(&model, 1, 1, PT_FN_MALLOC, 0x1000, 0, 20, 0xa);  /* its free was lost */
  call(&model, 1, 1, PT_FN_MALLOC, 0x1000, 0, 30, 0xa);  /* and again */
  call(&model, 1, 1, PT_FN_MALLOC, 0x2000, 0, 5, 0xb);
  call(&model, 2, 2, PT_FN_FREE, 0x2000, 0, 0, 0xc);     /* child frees the parent's block */
  call(&model, 1, 1, PT_FN_FREE, 0x2000, 0, 0, 0xc);
  pt_model_finish(&model);
  struct pt_totals *p = &process(&model, 1)->totals, *c = &process(&model, 2)->totals;
  check(p->displaced == 2 && p->leaked_blocks == 1 && p->leaked_bytes == 30 &&
            p->live_bytes == 30 + 20,
        "an address handed out again while live: the older blocks counted as lost frees");
  check(c->inherited_frees == 1 && c->unknown_frees == 0 && p->unknown_frees == 0,
        "a child's free of its parent's block is inherited, not misuse");
  check(model.all.live_bytes == p->live_bytes + c->live_bytes &&
            model.all.peak_live == 10 + 20 - 10 + 30 + 5,
        "the whole trace's live bytes are the processes' sum");
  pt_model_free(&model);
}

static void test_heap(void)
{
  struct pt_model model;
  pt_model_init(&model);
  heap(&model, 1, true, PALLOC_HEAP_MMAP, 4 << 20);
  heap(&model, 1, true, PALLOC_HEAP_MMAP, 1 << 20);
  heap(&model, 1, false, PALLOC_HEAP_MADVISE, 1 << 20);
  heap(&model, 1, false, PALLOC_HEAP_MUNMAP, 1 << 20);
  pt_model_finish(&model);
  struct pt_totals *t = &process(&model, 1)->totals;
  check(t->heap_peak == 5 << 20 && t->heap == 4 << 20 && t->heap_dropped == 1 << 20,
        "heap: grows and unmaps change it, madvise only drops pages");
  check(model.timeline->len >= 2, "the chart has points");
  pt_model_free(&model);
}

int main(void)
{
  printf("1..13\n");
  test_temporaries_and_misuse();
  test_realloc();
  test_lost_free_and_fork();
  test_heap();
  return failed_count != 0;
}
