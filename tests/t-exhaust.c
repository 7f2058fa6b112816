/* t-exhaust.c: under RLIMIT_AS, in a forked child, every API fails with NULL/ENOMEM (never a
 * crash), every success is aligned (and zeroed for calloc), blocks made before stay intact and
 * the heap consistent at the point of exhaustion, and freeing brings recovery: the same API
 * then fills the address space again to at least half the first count. Memory palloc holds
 * (its caches, cached mappings, free regions and tops) is given back before a request fails;
 * the pages inside free blocks are not (they cannot help it), and malloc_trim(0) gives them
 * back. */
#include "ptest.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct node {
  struct node *next;
};

enum api { A_MALLOC, A_CALLOC, A_REALLOC, A_VALLOC, A_PVALLOC, A_MEMALIGN, A_POSIX_MEMALIGN,
           A_ALIGNED_ALLOC, A_COUNT };
static const char *const api_names[] = {"malloc", "calloc", "realloc", "valloc", "pvalloc",
                                        "memalign", "posix_memalign", "aligned_alloc"};

struct fill_result {
  size_t count;
  int bad; /* misaligned, unzeroed or a wrong failure code */
};

/* Allocate with one API until it fails; returns the list in *head. */
static struct fill_result fill(enum api api, size_t size, struct node **head)
{
  struct fill_result r = {0, 0};
  size_t page = page_size();
  for (;;) {
    void *p = NULL;
    size_t alignment = 16;
    errno = 0;
    switch (api) {
    case A_MALLOC: p = malloc(size); break;
    case A_CALLOC: p = calloc(1, size); break;
    case A_REALLOC: p = realloc(NULL, size); break;
    case A_VALLOC: p = valloc(size); alignment = page; break;
    case A_PVALLOC: p = pvalloc(size); alignment = page; break;
    case A_MEMALIGN: p = memalign(128, size); alignment = 128; break;
    case A_ALIGNED_ALLOC: p = aligned_alloc(128, size); alignment = 128; break;
    case A_POSIX_MEMALIGN: {
      int saved = errno = 1789;
      int rc = posix_memalign(&p, 128, size);
      alignment = 128;
      if (rc != 0) {
        r.bad |= (rc != ENOMEM || errno != saved) << 3;
        return r;
      }
      break;
    }
    default: break;
    }
    if (p == NULL) {
      r.bad |= (errno != ENOMEM) << 2;
      return r;
    }
    r.bad |= !aligned_to(p, alignment);
    if (api == A_CALLOC && !all_bytes(p, size, 0))
      r.bad |= 2;
    memset(p, 0xff, size); /* dirty it: a later calloc must zero recycled memory */
    struct node *n = p;
    n->next = *head;
    *head = n;
    r.count++;
  }
}

static void free_list(struct node *head)
{
  while (head) {
    struct node *next = head->next;
    free(head);
    head = next;
  }
}

struct thread_arg {
  enum api api;
  size_t size;
  struct fill_result r;
  struct node *head;
};

static void *fill_thread(void *arg)
{
  struct thread_arg *t = arg;
  t->r = fill(t->api, t->size, &t->head);
  return NULL;
}

/* The child: limit address space, then main plus 4 threads exhaust it with one API. Writes one
 * line per finding on stdout (shared with the parent's TAP through a pipe); exit 0 = all good. */
static int child(enum api api)
{
  size_t sizes[] = {144, page_size(), 17 * page_size(), 300000};
  struct rlimit lim;
  getrlimit(RLIMIT_AS, &lim);
  /* Room for what is mapped now plus 192 MiB. */
  lim.rlim_cur = address_space_bytes() + (192u << 20);
  if (setrlimit(RLIMIT_AS, &lim) != 0)
    return 11;
  int failures = 0;
  /* Made before the limit bites, checked after every exhaustion: failure must not corrupt. */
  size_t sentinel_sizes[2] = {200, 200000};
  unsigned char *sentinels[2];
  for (int i = 0; i < 2; i++) {
    sentinels[i] = malloc(sentinel_sizes[i]);
    if (!sentinels[i])
      return 12;
    fill_pattern(sentinels[i], sentinel_sizes[i], 4242 + (uint64_t)i);
  }
  for (unsigned round = 0; round < 4 * ptest_stress(); round++) {
    int s = (int)(round % 4);
    struct thread_arg t[4];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t tid[4];
    int started = 0;
    for (int i = 0; i < 4; i++) {
      t[i] = (struct thread_arg){.api = api, .size = sizes[s]};
      started += pthread_create(&tid[i], &attr, fill_thread, &t[i]) == 0;
    }
    struct node *head = NULL;
    struct fill_result r = fill(api, sizes[s], &head);
    for (int i = 0; i < started; i++) {
      pthread_join(tid[i], NULL);
      r.bad |= t[i].r.bad;
      r.count += t[i].r.count;
    }
    printf("# %s(%zu): %zu blocks until ENOMEM\n", api_names[api], sizes[s], r.count);
    if (r.bad || r.count < 8) {
      printf("# %s(%zu): %zu blocks before failure, bad flags %#x\n", api_names[api], sizes[s],
             r.count, r.bad);
      failures++;
    }
    if (P.check_heap() != 0 || !pattern_ok(sentinels[0], sentinel_sizes[0], 4242) ||
        !pattern_ok(sentinels[1], sentinel_sizes[1], 4243)) {
      printf("# %s(%zu): heap inconsistent or earlier blocks damaged at exhaustion\n",
             api_names[api], sizes[s]);
      failures++;
    }
    for (int i = 0; i < started; i++)
      free_list(t[i].head);
    free_list(head);
    unsigned char *again = api == A_CALLOC ? calloc(1, 1u << 20) : malloc(1u << 20);
    if (!again || (api == A_CALLOC && !all_bytes(again, 1u << 20, 0))) {
      printf("# %s(%zu): no recovery: malloc(1 MiB) after freeing everything = %p\n",
             api_names[api], sizes[s], (void *)again);
      failures++;
    } else {
      memset(again, 1, 1u << 20);
    }
    free(again);
    if (P.check_heap() != 0) {
      printf("# %s(%zu): heap check failed after recovery\n", api_names[api], sizes[s]);
      failures++;
    }
    /* Recovery is complete: the main thread alone fills the space again. */
    struct node *again_head = NULL;
    struct fill_result again_r = fill(api, sizes[s], &again_head);
    free_list(again_head);
    if (again_r.bad || again_r.count < r.count / 2) {
      printf("# %s(%zu): after freeing, only %zu blocks (first time %zu), bad flags %#x\n",
             api_names[api], sizes[s], again_r.count, r.count, again_r.bad);
      failures++;
    }
    fflush(stdout);
  }
  for (int i = 0; i < 2; i++)
    free(sentinels[i]);
  return failures ? 1 : 0;
}

/* ---- Memory palloc holds is given back before a request fails ---------------------------- */

struct held_shape {
  const char *what;
  size_t block_size, count;
  bool in_thread;  /* freed by a thread that then exits (its cache is handed back) */
  enum api big_api; /* how the big block is asked for */
};

struct held_fill {
  const struct held_shape *shape;
  void **blocks;
};

static void *fill_and_free(void *arg)
{
  struct held_fill *h = arg;
  for (size_t i = 0; i < h->shape->count; i++) {
    h->blocks[i] = malloc(h->shape->block_size);
    if (h->blocks[i] == NULL)
      return NULL;
    memset(h->blocks[i], 0x5a, h->shape->block_size);
  }
  for (size_t i = 0; i < h->shape->count; i++)
    free(h->blocks[i]);
  return h;
}

static void *nothing(void *arg) { return arg; }

/* The child: fill and free, then limit the address space to what is mapped now plus the big
 * block (and a slack of 1 MiB) less half of what the freed blocks left mapped, so that the big
 * block fits only if palloc gives that half back. 0 when the big block came, zeroed for
 * calloc, writable, with a consistent heap. */
static int held_child_status(const struct held_shape *shape)
{
  const size_t big = (size_t)64 << 20;
  const size_t slack = (size_t)1 << 20; /* for the big block's own header and rounding */
  struct held_fill h = {shape, calloc(shape->count, sizeof(void *))};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t tid;
  /* A first thread, so that the filling one reuses its stack (libc keeps it) and the address
   * space measured below is palloc's doing. */
  if (h.blocks == NULL || pthread_create(&tid, &attr, nothing, NULL) != 0 ||
      pthread_join(tid, NULL) != 0)
    return 10;
  size_t before = address_space_bytes();
  void *filled = NULL;
  if (shape->in_thread) {
    if (pthread_create(&tid, &attr, fill_and_free, &h) != 0 || pthread_join(tid, &filled) != 0)
      return 11;
  } else {
    filled = fill_and_free(&h);
  }
  if (filled == NULL)
    return 12;
  size_t after = address_space_bytes();
  size_t held = after > before ? after - before : 0;
  struct rlimit lim;
  getrlimit(RLIMIT_AS, &lim);
  lim.rlim_cur = after + big + slack - held / 2;
  if (setrlimit(RLIMIT_AS, &lim) != 0)
    return 13;
  void *p = NULL;
  errno = 0;
  switch (shape->big_api) {
  case A_CALLOC: p = calloc(1, big); break;
  case A_VALLOC: p = valloc(big); break;
  case A_REALLOC: p = realloc(malloc(16), big); break;
  default: p = malloc(big); break;
  }
  printf("# %s: %zu MiB left mapped after the frees; %s(64 MiB) = %s (errno %d)\n", shape->what,
         held >> 20, api_names[shape->big_api], p ? "a block" : "NULL", errno);
  fflush(stdout); /* the child leaves with _exit */
  if (p == NULL || (shape->big_api == A_CALLOC && !all_bytes(p, big, 0)))
    return 1;
  memset(p, 1, big);
  free(p);
  return P.check_heap() == 0 ? 0 : 2;
}

/* run_in_child's form of held_child_status: the child leaves with its status. */
static void held_child(void *shape)
{
  _exit(held_child_status(shape));
}

static void test_held_memory_given_back(void)
{
  static const struct held_shape shapes[] = {
    {"40 blocks of 1 MiB freed", (size_t)1 << 20, 40, false, A_MALLOC},
    {"40000 blocks of 1 KiB freed", 1024, 40000, false, A_VALLOC},
    {"200 blocks of 200000 bytes freed", 200000, 200, false, A_REALLOC},
    {"40000 blocks of 1 KiB freed by an exited thread", 1024, 40000, true, A_CALLOC},
    {"600 blocks of 17 pages freed by an exited thread", 17 * 4096, 600, true, A_VALLOC},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    static char err[1024];
    int status = -1;
    run_in_child(held_child, (void *)&shapes[i], 60, &status, err, sizeof err);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "%s, then 64 MiB under a limit met only if half of what they left mapped is given "
       "back: a zeroed, writable block and a sound heap (status %#x)", shapes[i].what, status);
  }
}

/* ---- A failed request gives back address space, not the pages of free blocks ------------ */

/* What failed_request_child found, as bits of its exit status. */
enum { FAILED_NOT_ENOMEM = 1, FAILED_RELEASED_PAGES = 2, TRIM_KEPT_PAGES = 4, HEAP_BROKEN = 8,
       HOLES_NOT_FOUND = 64 };

/* The whole pages inside each of holes[0..HOLES), the blocks' interiors past their first and
 * before their last 64 bytes: resident ones, summed. */
enum { HOLES = 3 };
static size_t holes_resident(unsigned char *const *holes, size_t size, size_t *pages)
{
  size_t resident = 0;
  *pages = 0;
  for (int k = 0; k < HOLES; k++) {
    const char *start = (char *)holes[k] + 64, *end = (char *)holes[k] + size - 64;
    *pages += whole_pages(start, end);
    resident += resident_pages(start, end);
  }
  return resident;
}

/* The child: three free blocks of about 12 KiB, each between two blocks in use (under the sbrk
 * backend's 16 KiB, whose pages a free gives back at once; in the mmap backend's bins that
 * malloc_trim walks), then a request over the address space left by RLIMIT_AS. Before, every
 * failure ran malloc_trim(0)'s walk of the heap, which gave those pages back; now they stay,
 * and malloc_trim(0) gives them back. */
static void failed_request_child(void *unused)
{
  (void)unused;
  void *probe = malloc(12u << 10);
  const size_t size = malloc_usable_size(probe); /* its class's whole size: blocks side by side */
  free(probe);
  static unsigned char *run[HOLE_RUN], *spare[HOLE_TRIES];
  if (!blocks_side_by_side(size, run, spare))
    _exit(HOLES_NOT_FOUND);
  unsigned char *holes[HOLES] = {run[1], run[3], run[5]};
  for (int k = 0; k < HOLES; k++)
    free(holes[k]);
  struct rlimit lim;
  getrlimit(RLIMIT_AS, &lim);
  lim.rlim_cur = address_space_bytes() + ((size_t)32 << 20);
  if (setrlimit(RLIMIT_AS, &lim) != 0)
    _exit(HOLES_NOT_FOUND + 1);
  errno = 0;
  void *big = malloc((size_t)256 << 20);
  int status = big != NULL || errno != ENOMEM ? FAILED_NOT_ENOMEM : 0;
  size_t pages, after_failure = holes_resident(holes, size, &pages);
  malloc_trim(0);
  size_t after_trim = holes_resident(holes, size, &pages);
  printf("# %zu whole pages inside the free blocks: %zu resident after the failed request, "
         "%zu after malloc_trim(0)\n", pages, after_failure, after_trim);
  fflush(stdout); /* the child leaves with _exit */
  status |= after_failure != pages ? FAILED_RELEASED_PAGES : 0;
  status |= after_trim != 0 ? TRIM_KEPT_PAGES : 0;
  status |= P.check_heap() != 0 ? HEAP_BROKEN : 0;
  _exit(status);
}

static void test_failed_request_keeps_pages(void)
{
  static char err[1024];
  int status = -1;
  run_in_child(failed_request_child, NULL, 60, &status, err, sizeof err);
  int found = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  bool ran = found >= 0 && found < HOLES_NOT_FOUND;
  ok(ran, "three free blocks of about 12 KiB between blocks in use, then a request over RLIMIT_AS "
     "(status %#x)", status);
  ok(ran && !(found & FAILED_NOT_ENOMEM), "the request fails with ENOMEM");
  ok(ran && !(found & FAILED_RELEASED_PAGES),
     "the failure gives back address space only: the pages inside the free blocks stay "
     "resident (no walk of the heap on every failure)");
  ok(ran && !(found & TRIM_KEPT_PAGES), "malloc_trim(0) then gives those pages back");
  ok(ran && !(found & HEAP_BROKEN), "the heap is consistent");
}

int test_exhaust(void)
{
  ptest_init();
  for (int api = 0; api < A_COUNT; api++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      alarm(60 * ptest_stress());
      _exit(child((enum api)api));
    }
    int status = -1;
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "%s under RLIMIT_AS (4 sizes, 5 threads): NULL + ENOMEM, aligned, zeroed, then recovers (status %#x)",
       api_names[api], status);
  }
  test_held_memory_given_back();
  test_failed_request_keeps_pages();
  return tap_done();
}
