/* transfer.h: per-class stacks of free small blocks shared by all threads, between the thread
 * caches and the backend (tcmalloc's "transfer cache").
 *
 * A thread whose bin overflows puts the older half here instead of handing it to the backend;
 * a thread whose bin is empty takes blocks from here before it asks the backend. A producer
 * thread that allocates and a consumer thread that frees thus trade blocks through one short
 * critical section per batch (a copy of pointers), without the backend's lock, its block
 * splitting and its coalescing.
 *
 *   transfer_heads[c]: lock | count        (initialised data, 48 bytes a class)
 *   slots_of(c):       slots[0] ... slots[count-1] | (unused) ... slots[capacity_of(c)-1]
 *                      (one packed .bss array, class after class)
 *
 * An empty (or full) class is seen from its count without taking the lock, so a process
 * whose blocks never change threads neither locks nor touches the slots' pages.
 *
 * A process with a single thread cache has no one to hand blocks to: its bins overflow to
 * the backend directly (the transfer cache would only hold memory back from coalescing).
 *
 * Blocks here are, like cached ones, in use for the backend and carry tcache_key in word 0.
 * Invariants (checked by transfer_check, reported as 104 and 105):
 *   T4  count <= the class's capacity (TRANSFER_CAPACITY, fewer for big classes, none above
 *       CACHE_SHARED_MAX_BLOCK); every block held has U set, M clear, a size of at least
 *       class_block_size(c) (exactly that in an exact class, class_may_hold), and word 0 equal
 *       to tcache_key.
 *   T5  no block is held twice.
 */
#ifndef PALLOC_TRANSFER_H
#define PALLOC_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRANSFER_CAPACITY 128             /* blocks a class holds at most... */
#define TRANSFER_BYTES ((size_t)32 << 10) /* ...and bytes (none above CACHE_SHARED_MAX_BLOCK), */
#define TRANSFER_CAPACITY_MIN 2           /* down to this many blocks for the biggest classes */

/* Lay out the classes' slots; once, at start-up, before any thread cache exists. */
void transfer_init(void);
/* Put up to count blocks of class cls; returns how many were taken (the first ones). */
size_t transfer_put(unsigned cls, void **blocks, size_t count);
/* Take up to count blocks of class cls into blocks[]; returns how many. */
size_t transfer_take(unsigned cls, void **blocks, size_t count);
/* Whether class cls holds payload (a double free of a block held here). */
bool transfer_holds(unsigned cls, void *payload);
/* Hand every held block back to the backend (malloc_trim). */
void transfer_drain(void);
uint64_t transfer_cached_bytes(void);
int transfer_check(void);

void transfer_fork_prepare(void);
void transfer_fork_parent(void);
void transfer_fork_child(void);

#endif /* PALLOC_TRANSFER_H */
