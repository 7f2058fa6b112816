/* misuse_cases.c: the misuse programs (misuse_cases.h). Calls go through volatile pointers so
 * that the compiler neither warns about the misuse nor drops it. */
#define _GNU_SOURCE
#include "misuse_cases.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *(*volatile m_malloc)(size_t) = malloc;
static void *(*volatile m_realloc)(void *, size_t) = realloc;
static void (*volatile m_free)(void *) = free;
static size_t (*volatile m_usable)(void *) = malloc_usable_size;

static void double_free(size_t size)
{
  char *p = m_malloc(size);
  memset(p, 1, 64);
  m_free(p);
  m_free(p);
}
static void double_free_small(void) { double_free(32); }
static void double_free_medium(void) { double_free(5000); }
static void double_free_large(void) { double_free(300 * 1024); }
static void double_free_mapped(void) { double_free(1u << 20); }
static void double_free_huge(void) { double_free(16u << 20); }

static void double_free_delayed(void)
{
  void *p = m_malloc(32), *q = m_malloc(32);
  m_free(p);
  m_free(q);
  m_free(p);
}

/* Other allocations (of other sizes, so that none gets p back) between the two frees. */
static void double_free_after_allocations(void)
{
  void *p = m_malloc(64), *keep[110];
  m_free(p);
  for (int i = 0; i < 100; i++)
    keep[i] = m_malloc(200 + (size_t)i % 3 * 16);
  for (int i = 100; i < 110; i++)
    keep[i] = m_malloc(5000);
  m_free(p);
  for (int i = 0; i < 110; i++)
    m_free(keep[i]);
}

/* Free count (at most 300) blocks of size bytes, in the order they were allocated, then the
 * first again. */
static void free_all_then_first_again(size_t size, int count)
{
  void *p[300];
  if (count > 300)
    abort();
  for (int i = 0; i < count; i++)
    p[i] = m_malloc(size);
  for (int i = 0; i < count; i++)
    m_free(p[i]);
  m_free(p[0]);
}

/* 19 other blocks of the class freed after it: it is deep in the thread cache's bin. */
static void double_free_deep(void) { free_all_then_first_again(20, 20); }

/* 300 blocks of 48 bytes freed: the thread cache's bin (at most 64) overflows, its older
 * halves go to the backend (the mmap backend defers them on a list of their size); then the
 * first block is freed again. */
static void double_free_flushed(void) { free_all_then_first_again(40, 300); }

static void double_free_mapped_after_allocations(void)
{
  void *p = m_malloc(1u << 20), *keep[3];
  m_free(p);
  for (int i = 0; i < 3; i++)
    keep[i] = m_malloc((size_t)(3 + i) << 20);
  m_free(p);
  for (int i = 0; i < 3; i++)
    m_free(keep[i]);
}

/* Thread A frees p into its cache and stays alive; the main thread then frees p again. */
static void *volatile cross_thread_block;
static pthread_mutex_t cross_thread_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cross_thread_freed = PTHREAD_COND_INITIALIZER;

static void *free_then_wait(void *unused)
{
  (void)unused;
  char *p = m_malloc(48);
  memset(p, 1, 48);
  m_free(p);
  pthread_mutex_lock(&cross_thread_lock);
  cross_thread_block = p;
  pthread_cond_signal(&cross_thread_freed);
  pthread_mutex_unlock(&cross_thread_lock);
  for (;;)
    pause();
  return NULL;
}

static void double_free_other_thread(void)
{
  m_free(m_malloc(48)); /* the main thread has a cache of its own too */
  pthread_t thread;
  if (pthread_create(&thread, NULL, free_then_wait, NULL) != 0)
    _exit(MISUSE_NOT_APPLICABLE);
  pthread_mutex_lock(&cross_thread_lock);
  while (cross_thread_block == NULL)
    pthread_cond_wait(&cross_thread_freed, &cross_thread_lock);
  pthread_mutex_unlock(&cross_thread_lock);
  m_free(cross_thread_block);
}

static void realloc_freed(size_t size)
{
  void *p = m_malloc(size);
  m_free(p);
  m_realloc(p, size * 2);
}
static void realloc_freed_small(void) { realloc_freed(100); }
static void realloc_freed_medium(void) { realloc_freed(5000); }
static void realloc_freed_mapped(void) { realloc_freed(1u << 20); }

static void free_stack(void)
{
  char local[64] __attribute__((aligned(16)));
  memset(local, 0, sizeof local);
  m_free(m_malloc(10));
  m_free(&local[16]);
}
static void realloc_stack(void)
{
  char local[64] __attribute__((aligned(16)));
  memset(local, 0, sizeof local);
  m_free(m_malloc(10));
  m_realloc(&local[16], 100);
}

static char global_buffer[256] __attribute__((aligned(64)));
static void free_global(void)
{
  m_free(m_malloc(10));
  m_free(&global_buffer[64]);
}
static void realloc_global(void)
{
  m_free(m_malloc(10));
  m_realloc(&global_buffer[64], 100);
}

static void free_wild(void)
{
  m_free(m_malloc(10));
  m_free((void *)0x7ff000000000);
}
static void realloc_wild(void)
{
  m_free(m_malloc(10));
  m_realloc((void *)0x1000, 100);
}

static void interior(size_t size, size_t offset, int use_realloc)
{
  char *p = m_malloc(size);
  memset(p, 0, size);
  if (use_realloc)
    m_realloc(p + offset, size);
  else
    m_free(p + offset);
}
static void free_interior_small(void) { interior(256, 16, 0); }
static void realloc_interior_small(void) { interior(256, 16, 1); }
static void free_interior_large(void) { interior(1u << 20, 4096, 0); }
static void realloc_interior_large(void) { interior(1u << 20, 4096, 1); }
static void free_misaligned(void) { interior(64, 8, 0); }
static void realloc_misaligned(void) { interior(64, 1, 1); }

/* Of count blocks of size bytes, the index of one whose next block (the lowest address above
 * it among them) starts within two blocks' size; *next gets that neighbour's index. */
static int adjacent_pair(char **blocks, int count, size_t size, int *next)
{
  for (int i = 0; i < count; i++) {
    int best = -1;
    for (int j = 0; j < count; j++)
      if (blocks[j] > blocks[i] && (best < 0 || blocks[j] < blocks[best]))
        best = j;
    if (best >= 0 && (size_t)(blocks[best] - blocks[i]) <= 2 * size + 64) {
      *next = best;
      return i;
    }
  }
  abort(); /* no two neighbours: the case cannot be set up (not a finding) */
}

/* An overflow out of block a that rewrites everything up to and including the first extra
 * bytes of its neighbour b (the allocator's metadata between them); then the frees, in the
 * order given. */
static void overflow(size_t size, size_t into_next, int free_next_first, int next_freed_before)
{
  char *blocks[48];
  for (int i = 0; i < 48; i++)
    blocks[i] = m_malloc(size);
  int b, a = adjacent_pair(blocks, 48, size, &b);
  if (next_freed_before)
    m_free(blocks[b]);
  memset(blocks[a], 'A', (size_t)(blocks[b] - blocks[a]) + into_next);
  if (free_next_first && !next_freed_before)
    m_free(blocks[b]);
  m_free(blocks[a]);
  for (int i = 0; i < 48; i++)
    if (i != a && i != b)
      m_free(blocks[i]);
  for (int i = 0; i < 64; i++)
    m_free(m_malloc(size));
  if (!free_next_first && !next_freed_before)
    m_free(blocks[b]);
}
static void overflow_small_into_next(void) { overflow(24, 0, 1, 0); }
static void overflow_medium_into_next(void) { overflow(40000, 0, 0, 0); }
static void overflow_into_free_next(void) { overflow(40000, 16, 0, 1); }

static void underflow(size_t size)
{
  char *keep = m_malloc(size), *p = m_malloc(size);
  memset(p - 16, 'A', 16);
  m_free(p);
  m_free(keep);
}
static void underflow_small(void) { underflow(24); }
static void underflow_medium(void) { underflow(40000); }
static void underflow_mapped(void) { underflow(1u << 20); }

void free_fillers(int count, size_t size)
{
  void *filler[FILLERS_MAX];
  if (count > FILLERS_MAX)
    abort();
  for (int i = 0; i < count; i++)
    filler[i] = m_malloc(size);
  for (int i = 0; i < count; i++)
    m_free(filler[i]);
}

/* A write into a freed small block's first word (where most allocators keep a free-list
 * link), then allocations of its size. */
static void write_after_free_link(void)
{
  void *keep = m_malloc(32), *p = m_malloc(32);
  m_free(keep);
  m_free(p);
  settle_recent_frees();
  *(volatile uintptr_t *)p ^= 8;
  for (int i = 0; i < 4; i++)
    m_malloc(32);
}

static void free_sized_mismatch(void)
{
  void (*sized)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  if (sized == NULL)
    _exit(MISUSE_NOT_APPLICABLE);
  void *p = m_malloc(1000);
  sized(p, 10);
}

#define FREE "free"
#define REALLOC "realloc"
#define TAG_DAMAGE "damaged|differ"
const struct misuse_case misuse_cases[] = {
  {"double-free-small", "double free, 32 B", double_free_small, "double free", FREE, NULL},
  {"double-free-medium", "double free, 5000 B", double_free_medium, "double free", FREE, NULL},
  {"double-free-large", "double free, 300 KiB", double_free_large, "double free", FREE, NULL},
  {"double-free-mapped", "double free, 1 MiB", double_free_mapped, "double free", FREE, NULL},
  {"double-free-huge", "double free, 16 MiB", double_free_huge, "double free", FREE, NULL},
  {"double-free-delayed", "double free: free p, free q, free p", double_free_delayed,
   "double free", FREE, NULL},
  {"double-free-after-allocs", "double free after 110 other allocations",
   double_free_after_allocations, "double free", FREE, NULL},
  {"double-free-deep", "double free, 20 blocks freed in between", double_free_deep,
   "double free", FREE, NULL},
  {"double-free-flushed", "double free of a block the thread cache handed back, 48 B",
   double_free_flushed, "double free", FREE, NULL},
  {"double-free-mapped-after-allocs", "double free, 1 MiB, after other big allocations",
   double_free_mapped_after_allocations, "double free", FREE, NULL},
  {"double-free-other-thread", "double free of a block in another thread's cache, 48 B",
   double_free_other_thread, "double free", FREE, NULL},
  {"realloc-freed-small", "realloc of a freed block, 100 B", realloc_freed_small,
   "already freed", REALLOC, NULL},
  {"realloc-freed-medium", "realloc of a freed block, 5000 B", realloc_freed_medium,
   "already freed", REALLOC, NULL},
  {"realloc-freed-mapped", "realloc of a freed block, 1 MiB", realloc_freed_mapped,
   "already freed", REALLOC, NULL},
  {"free-stack", "free of a stack address", free_stack, "invalid pointer", FREE, NULL},
  {"realloc-stack", "realloc of a stack address", realloc_stack, "invalid pointer", REALLOC,
   NULL},
  {"free-global", "free of a global", free_global, "invalid pointer", FREE, NULL},
  {"realloc-global", "realloc of a global", realloc_global, "invalid pointer", REALLOC, NULL},
  {"free-wild", "free((void *)0x7ff000000000)", free_wild, "invalid pointer", FREE, NULL},
  {"realloc-wild", "realloc((void *)0x1000, 100)", realloc_wild, "invalid pointer", REALLOC,
   NULL},
  {"free-interior-small", "free of an interior pointer, 256 B + 16", free_interior_small,
   "invalid pointer", FREE, NULL},
  {"realloc-interior-small", "realloc of an interior pointer, 256 B + 16",
   realloc_interior_small, "invalid pointer", REALLOC, NULL},
  {"free-interior-large", "free of an interior pointer, 1 MiB + 4096", free_interior_large,
   "invalid pointer", FREE, NULL},
  {"realloc-interior-large", "realloc of an interior pointer, 1 MiB + 4096",
   realloc_interior_large, "invalid pointer", REALLOC, NULL},
  {"free-misaligned", "free of a misaligned pointer (p + 8)", free_misaligned,
   "invalid pointer", FREE, NULL},
  {"realloc-misaligned", "realloc of a misaligned pointer (p + 1)", realloc_misaligned,
   "invalid pointer", REALLOC, NULL},
  {"overflow-small", "overflow into the next block's header, 24 B", overflow_small_into_next,
   TAG_DAMAGE, FREE, NULL},
  {"overflow-medium", "overflow into the next block's header, 40000 B",
   overflow_medium_into_next, TAG_DAMAGE, FREE, NULL},
  {"overflow-free-next", "overflow into a free neighbour, 40000 B", overflow_into_free_next,
   TAG_DAMAGE, FREE, NULL},
  {"underflow-small", "underflow over the block's header, 24 B", underflow_small, TAG_DAMAGE,
   FREE, NULL},
  {"underflow-medium", "underflow over the block's header, 40000 B", underflow_medium,
   TAG_DAMAGE, FREE, NULL},
  {"underflow-mapped", "underflow over the block's header, 1 MiB", underflow_mapped,
   TAG_DAMAGE, FREE, NULL},
  {"write-after-free", "write into a freed block's first word, then malloc", write_after_free_link,
   "thread cache is damaged", "malloc", NULL},
  {"free-sized-mismatch", "free_sized(malloc(1000), 10)", free_sized_mismatch,
   "size does not match", "free_sized", "PALLOC_CHECK_FREE_SIZED=1"},
};
const size_t misuse_case_count = sizeof misuse_cases / sizeof misuse_cases[0];
