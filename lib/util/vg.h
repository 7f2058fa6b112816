/* vg.h: what palloc tells valgrind's memcheck (client requests of valgrind/memcheck.h).
 *
 * Built with --enable-valgrind (the default when valgrind/memcheck.h exists) and run under
 * memcheck with palloc serving the allocations, palloc describes its heap so that memcheck
 * reports a program's leaks, uses after free, overflows and uninitialised reads as it does
 * with its own malloc:
 *   V1  every range palloc takes from the OS (backends/os.c) starts NOACCESS: block tags,
 *       free-list links, footers, region headers and the unused top are off limits;
 *   V2  a block handed to the program is a MALLOCLIKE block of the size asked for, undefined
 *       (defined for calloc); its request was VG_REDZONE_SIZE bytes larger, and the bytes from
 *       the size asked for to the usable size stay NOACCESS, so that an overflow of one byte is
 *       reported, and blocks keep NOACCESS bytes between them as memcheck's own malloc does;
 *   V3  a freed block is FREELIKE (NOACCESS again; memcheck names it in use-after-free reports)
 *       and waits among the last 256 freed blocks before palloc reuses its memory (api.c);
 *   V4  realloc resizes in place (RESIZEINPLACE) or makes the new block, copies the bytes the
 *       program asked for (so memcheck carries their definedness over), then frees the old one;
 *   V5  malloc_usable_size answers the size asked for, as memcheck's own malloc does, so a
 *       program never writes into the NOACCESS tail on palloc's word.
 * palloc's own code reads and writes NOACCESS memory: each entry point that touches the heap
 * does its work with memcheck's error reporting off for the calling thread (vg_enter/vg_leave,
 * or the *_memcheck twins in api.c); memcheck loads NOACCESS bytes as defined, so palloc's own
 * values are unaffected. Under memcheck the thread caches are off (init.c), so every call
 * takes a slow path, and each slow path asks vg_memcheck() once: outside memcheck (and under
 * callgrind or cachegrind, where vg_memcheck() is false) that is one load and one branch, and
 * the fast paths carry nothing. The requests themselves live out of line in vg.c. Without
 * --enable-valgrind everything here compiles to nothing.
 */
#ifndef PALLOC_UTIL_VG_H
#define PALLOC_UTIL_VG_H

#include "config.h"
#include "util/bits.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Bytes added to every request under memcheck (V2); memcheck's own malloc uses 16 too. */
#define VG_REDZONE_SIZE 16

#if defined(HAVE_VALGRIND_MEMCHECK_H) && defined(PALLOC_VALGRIND)

/* -1 before the first look, then 1 under memcheck, 0 otherwise. */
extern atomic_int vg_state;
int vg_detect(void);

/* The requests (vg.c); call them only when vg_memcheck() is true. */
void vg_error_reporting(bool enabled);
void vg_mark_noaccess(void *addr, size_t len);
void vg_malloclike(void *payload, size_t size, size_t usable, bool zeroed);
void vg_freelike(void *payload);
void vg_resize_in_place(void *payload, size_t old_size, size_t new_size);
/* The size the program asked for a live block: the length of its addressable prefix. */
size_t vg_addressable_prefix(const void *payload, size_t usable);

static inline bool vg_memcheck(void)
{
  int state = atomic_load_explicit(&vg_state, memory_order_relaxed);
  if (unlikely(state < 0))
    state = vg_detect();
  return state > 0;
}

#else /* without valgrind support: vg_memcheck() is false and nothing else is ever called */

static inline bool vg_memcheck(void) { return false; }
static inline void vg_error_reporting(bool enabled) { (void)enabled; }
static inline void vg_mark_noaccess(void *addr, size_t len) { (void)addr; (void)len; }
static inline void vg_malloclike(void *payload, size_t size, size_t usable, bool zeroed)
{
  (void)payload; (void)size; (void)usable; (void)zeroed;
}
static inline void vg_freelike(void *payload) { (void)payload; }
static inline void vg_resize_in_place(void *payload, size_t old_size, size_t new_size)
{
  (void)payload; (void)old_size; (void)new_size;
}
static inline size_t vg_addressable_prefix(const void *payload, size_t usable)
{
  (void)payload;
  return usable;
}

#endif

/* Around palloc's own work on its heap, outside the *_memcheck twins. */
static inline void vg_enter(void)
{
  if (unlikely(vg_memcheck()))
    vg_error_reporting(false);
}

static inline void vg_leave(void)
{
  if (unlikely(vg_memcheck()))
    vg_error_reporting(true);
}

/* V1: memory just taken from the OS. */
static inline void vg_os_memory(void *addr, size_t len)
{
  if (unlikely(vg_memcheck()))
    vg_mark_noaccess(addr, len);
}

#endif /* PALLOC_UTIL_VG_H */
