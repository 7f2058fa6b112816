/* page.c: page_size() (page.h). */
#include "config.h"
#include "util/page.h"

#include <sys/auxv.h>

size_t page_size(void)
{
  static size_t size;
  if (__builtin_expect(size == 0, 0)) {
    size_t from_kernel = (size_t)getauxval(AT_PAGESZ);
    size = from_kernel ? from_kernel : 4096;
  }
  return size;
}
