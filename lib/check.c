/* check.c: palloc_check_heap(), the whole-heap consistency check (front end, then backend). */
#include "config.h"

#include "backend.h"
#include "export.h"
#include "init.h"
#include "palloc.h"
#include "tcache.h"
#include "util/vg.h"

PALLOC_EXPORT int palloc_check_heap(void)
{
  vg_enter();
  init_ensure();
  int broken = tcache_check();
  if (broken == 0)
    broken = backend_check_heap();
  vg_leave();
  return broken;
}
