/* trace.c: the hook table, the per-thread trace state and the cold halves of trace.h.
 *
 * Everything here runs only once a tracer has installed hooks, except palloc_trace_register
 * itself. Nothing here allocates or takes an allocator lock.
 */
#include "config.h"
#include "trace.h"

#include "backend.h"
#include "export.h"
#include "init.h"

#include <errno.h>

#ifndef PALLOC_HAVE_LTTNG

PALLOC_EXPORT int palloc_trace_register(const struct palloc_trace_hooks *hooks)
{
  (void)hooks;
  return ENOSYS; /* configured with --disable-lttng: there are no call sites to hook */
}

#else /* PALLOC_HAVE_LTTNG */

#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>

#define COLD __attribute__((cold))

__thread struct trace_thread trace_thread __attribute__((tls_model("initial-exec")));
const struct palloc_trace_hooks *trace_hooks;

/* The dynamic loader's address range: calls from there are never reported. */
static uintptr_t loader_start;
static size_t loader_size;
static bool fork_handlers_ready;

/* ---- The dynamic loader's range ---------------------------------------------------------- */

/* From the loader's ELF header, mapped at AT_BASE: the span of its PT_LOAD segments. */
static void find_loader_range(void)
{
  uintptr_t base = (uintptr_t)getauxval(AT_BASE);
  if (base == 0)
    return; /* static program, or ld.so run as the program: no loader calls to skip */
  const ElfW(Ehdr) *header = (const ElfW(Ehdr) *)base;
  if (memcmp(header->e_ident, ELFMAG, SELFMAG) != 0)
    return;
  const ElfW(Phdr) *segments = (const ElfW(Phdr) *)(base + header->e_phoff);
  uintptr_t low = UINTPTR_MAX, high = 0;
  for (unsigned i = 0; i < header->e_phnum; i++) {
    if (segments[i].p_type != PT_LOAD)
      continue;
    uintptr_t start = base + segments[i].p_vaddr;
    if (start < low)
      low = start;
    if (start + segments[i].p_memsz > high)
      high = start + segments[i].p_memsz;
  }
  if (high > low) {
    loader_start = low;
    loader_size = high - low;
  }
}

static inline bool is_loader_address(const void *address)
{
  return (uintptr_t)address - loader_start < loader_size;
}

/* ---- Running hooks ----------------------------------------------------------------------- */

static inline const struct palloc_trace_hooks *current_hooks(void)
{
  return __atomic_load_n(&trace_hooks, __ATOMIC_ACQUIRE);
}

/* Hand the queued heap events to the hook, in order; only where no allocator lock is held. */
static void drain_pending(const struct palloc_trace_hooks *hooks)
{
  struct trace_thread *self = &trace_thread;
  unsigned char mode = self->mode;
  self->mode = TRACE_IN_HOOK;
  for (unsigned i = 0; i < self->pending_count; i++) /* a hook may queue more: re-read */
    if (hooks != NULL && hooks->heap != NULL)
      hooks->heap(&self->pending[i]);
  self->pending_count = 0;
  self->mode = mode;
}

static inline bool may_run_hooks(void)
{
  return trace_thread.mode == TRACE_IDLE || trace_thread.mode == TRACE_IN_CALL;
}

COLD void trace_heap_event(int grow, enum palloc_heap_how how, void *addr, size_t len)
{
  struct trace_thread *self = &trace_thread;
  if (current_hooks() == NULL)
    return;
  if (self->pending_count == TRACE_PENDING_MAX) {
    self->pending_lost++;
    return;
  }
  struct palloc_trace_heap *event = &self->pending[self->pending_count++];
  event->grow = grow;
  event->how = how;
  event->addr = addr;
  event->len = len;
  event->caller = self->mode == TRACE_IN_CALL ? self->caller : NULL;
}

COLD void trace_flush_event(unsigned cls, size_t block_size, size_t count,
                            enum palloc_flush_why why)
{
  const struct palloc_trace_hooks *hooks = current_hooks();
  if (hooks == NULL || !may_run_hooks())
    return;
  int saved_errno = errno;
  drain_pending(hooks);
  if (hooks->flush != NULL) {
    struct palloc_trace_flush event = {
      .size_class = cls, .block_size = block_size, .count = count, .why = why,
      .caller = trace_thread.mode == TRACE_IN_CALL ? trace_thread.caller : NULL,
    };
    unsigned char mode = trace_thread.mode;
    trace_thread.mode = TRACE_IN_HOOK;
    hooks->flush(&event);
    trace_thread.mode = mode;
  }
  errno = saved_errno;
}

COLD bool trace_call_begin(void *caller)
{
  struct trace_thread *self = &trace_thread;
  self->caller = caller;
  if (is_loader_address(caller)) {
    self->mode = TRACE_IN_LOADER_CALL;
    return false;
  }
  self->mode = TRACE_IN_CALL;
  return true;
}

COLD void trace_call_report(const struct palloc_trace_call *call)
{
  const struct palloc_trace_hooks *hooks = current_hooks();
  if (hooks == NULL)
    return;
  int saved_errno = errno;
  if (trace_thread.pending_count != 0)
    drain_pending(hooks);
  if (hooks->call != NULL) {
    trace_thread.mode = TRACE_IN_HOOK;
    hooks->call(call);
    trace_thread.mode = TRACE_IN_CALL;
  }
  errno = saved_errno;
}

COLD void trace_call_finish(void)
{
  struct trace_thread *self = &trace_thread;
  if (self->mode == TRACE_IN_CALL && self->pending_count != 0) {
    int saved_errno = errno;
    drain_pending(current_hooks());
    errno = saved_errno;
  }
  self->mode = TRACE_IDLE;
  self->caller = NULL;
}

/* ---- fork -------------------------------------------------------------------------------- */

/* The forking thread reports nothing from the moment palloc prepares for fork until fork
 * returns: in the child, palloc's own fork handler hands caches back before the tracer has
 * re-initialised itself there. What the handlers do to the heap stays queued until then. */
static __thread unsigned char mode_before_fork __attribute__((tls_model("initial-exec")));

static void trace_fork_prepare(void)
{
  mode_before_fork = trace_thread.mode;
  trace_thread.mode = TRACE_IN_QUIET;
}

static void trace_fork_done(void)
{
  trace_thread.mode = mode_before_fork;
}

/* ---- Registration ------------------------------------------------------------------------ */

static bool is_known_table(const struct palloc_trace_hooks *hooks)
{
  return hooks->version == PALLOC_TRACE_HOOKS_VERSION &&
         hooks->size >= sizeof(struct palloc_trace_hooks);
}

PALLOC_EXPORT int palloc_trace_register(const struct palloc_trace_hooks *hooks)
{
  if (hooks == NULL) {
    __atomic_store_n(&trace_hooks, NULL, __ATOMIC_RELEASE);
    return 0;
  }
  if (!is_known_table(hooks))
    return EINVAL;
  /* palloc's own fork handlers first, so that ours (registered after) run around them. */
  init_ensure();
  if (!fork_handlers_ready)
    fork_handlers_ready =
        pthread_atfork(trace_fork_prepare, trace_fork_done, trace_fork_done) == 0;
  if (loader_size == 0)
    find_loader_range();
  const struct palloc_trace_hooks *expected = NULL;
  if (!__atomic_compare_exchange_n(&trace_hooks, &expected, hooks, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return expected == hooks ? 0 : EBUSY;
  return 0;
}

#endif /* PALLOC_HAVE_LTTNG */
