/* vg.c: the client requests behind vg.h, called only under memcheck. */
#include "config.h"
#include "util/vg.h"

#if defined(HAVE_VALGRIND_MEMCHECK_H) && defined(PALLOC_VALGRIND)
#include <valgrind/memcheck.h>

atomic_int vg_state = -1;

/* Under memcheck only: RUNNING_ON_VALGRIND is true under every tool, but only memcheck answers
 * VALGRIND_GET_VBITS (1 for an addressable byte); other tools answer the default, 0. */
int vg_detect(void)
{
  int state = 0;
  if (RUNNING_ON_VALGRIND) {
    char probe = 0, vbits = 0;
    state = VALGRIND_GET_VBITS(&probe, &vbits, 1) == 1;
  }
  atomic_store_explicit(&vg_state, state, memory_order_relaxed);
  return state;
}

void vg_error_reporting(bool enabled)
{
  if (enabled)
    VALGRIND_ENABLE_ERROR_REPORTING;
  else
    VALGRIND_DISABLE_ERROR_REPORTING;
}

void vg_mark_noaccess(void *addr, size_t len)
{
  VALGRIND_MAKE_MEM_NOACCESS(addr, len);
}

/* V2: the bytes asked for become a block; the rest of the usable bytes stay off limits. */
void vg_malloclike(void *payload, size_t size, size_t usable, bool zeroed)
{
  VALGRIND_MALLOCLIKE_BLOCK(payload, size, 0, zeroed);
  if (usable > size)
    VALGRIND_MAKE_MEM_NOACCESS((char *)payload + size, usable - size);
}

void vg_freelike(void *payload)
{
  VALGRIND_FREELIKE_BLOCK(payload, 0);
}

void vg_resize_in_place(void *payload, size_t old_size, size_t new_size)
{
  VALGRIND_RESIZEINPLACE_BLOCK(payload, old_size, new_size, 0);
}

static bool vg_addressable(const char *byte)
{
  char vbits;
  return VALGRIND_GET_VBITS(byte, &vbits, 1) != 3;
}

/* A live block is addressable for exactly the bytes asked for (V2): binary search for the
 * first NOACCESS byte in [payload, payload + usable). GET_VBITS reports no error. */
size_t vg_addressable_prefix(const void *payload, size_t usable)
{
  const char *p = payload;
  size_t low = 0, high = usable; /* bytes below low are addressable; high is NOACCESS or end */
  while (low < high) {
    size_t mid = low + (high - low) / 2;
    if (vg_addressable(p + mid))
      low = mid + 1;
    else
      high = mid;
  }
  return low;
}

#endif
