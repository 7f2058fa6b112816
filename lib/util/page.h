/* page.h: the system's page size, for every layer (valloc and pvalloc in the front end, the
 * backends' mappings). Read once from the auxiliary vector; never allocates. */
#ifndef PALLOC_PAGE_H
#define PALLOC_PAGE_H

#include <stddef.h>

size_t page_size(void);

#endif /* PALLOC_PAGE_H */
