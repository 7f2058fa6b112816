/* static-prog.c: a program linked statically with a palloc archive, by tests/static.sh, which
 * reads what it prints. It names three of its functions as palloc names internal ones: the
 * link must succeed and call these (the archive keeps its own names local, Makefile.am). It
 * calls mallopt, which must not pull in glibc's malloc.o (whose malloc would clash with
 * palloc's), and allocates in threads and a forked child. */
#include <malloc.h>
#include <palloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Names palloc's own code uses (lib/util/page.c, the backends, lib/tcache.c). */
size_t page_size(void);
int backend_check_heap(void);
void *tcache_get(void);
size_t page_size(void) { return 12345; }
int backend_check_heap(void) { return -7; }
void *tcache_get(void) { return (void *)(uintptr_t)0x5eed; }

/* Each thread fills, checks and frees 1000 blocks of assorted sizes: 0 when all were intact. */
static void *churn(void *arg)
{
  unsigned seed = (unsigned)(uintptr_t)arg;
  unsigned char *blocks[1000];
  size_t sizes[1000];
  for (int i = 0; i < 1000; i++) {
    sizes[i] = 1 + (seed * 2654435761u + (unsigned)i * 40503u) % 3000;
    blocks[i] = malloc(sizes[i]);
    if (blocks[i] == NULL)
      return (void *)1;
    memset(blocks[i], (int)(i & 0xff), sizes[i]);
  }
  uintptr_t bad = 0;
  for (int i = 0; i < 1000; i++) {
    bad |= blocks[i][0] != (i & 0xff) || blocks[i][sizes[i] - 1] != (i & 0xff);
    free(blocks[i]);
  }
  return (void *)bad;
}

int main(void)
{
  printf("backend %s\n", palloc_backend_name());
  printf("own names %zu %d %p\n", page_size(), backend_check_heap(), tcache_get());
  printf("mallopt %d %d\n", mallopt(M_MMAP_THRESHOLD, 1 << 20), mallopt(M_MXFAST, 1000));
  struct palloc_stats before, after;
  palloc_stats_get(&before);
  char *text = malloc(100);
  strcpy(text, "static");
  palloc_stats_get(&after);
  printf("malloc counted %d, usable %d, text %s\n",
         after.calls[PALLOC_FN_MALLOC] > before.calls[PALLOC_FN_MALLOC],
         malloc_usable_size(text) >= 100, text);
  free(text);
  pthread_t threads[4];
  uintptr_t bad = 0;
  for (int t = 0; t < 4; t++)
    pthread_create(&threads[t], NULL, churn, (void *)(uintptr_t)(t + 1));
  for (int t = 0; t < 4; t++) {
    void *result;
    pthread_join(threads[t], &result);
    bad |= (uintptr_t)result;
  }
  printf("threads intact %d\n", bad == 0);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0)
    _exit(churn((void *)9) == NULL && palloc_check_heap() == 0 ? 0 : 1);
  int status = -1;
  waitpid(pid, &status, 0);
  printf("fork child %d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);
  printf("heap %d\n", palloc_check_heap());
  return 0;
}
