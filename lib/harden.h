/* harden.h: the front end's protections against misuse that go beyond validating a pointer.
 *
 * Owns three things, all on slow paths:
 *   - a ring of the last HARDEN_FREED_MAPPED payloads of blocks mapped on their own that were
 *     freed: their memory goes back to the OS, so a second free would otherwise only look like
 *     a pointer palloc never returned; the ring lets the report say "double free";
 *   - the optional protections of free (PALLOC_JUNK, PALLOC_QUARANTINE; init.h turns the
 *     thread caches off when either is on, so that every free comes here): junk-filling a freed
 *     block, and a quarantine, a FIFO of freed blocks whose reuse is delayed;
 *   - the optional check of free_sized's size (PALLOC_CHECK_FREE_SIZED).
 * Invariants: a quarantined block is in use to the backend, sealed, on the FIFO exactly once,
 * and carries harden_quarantine_mark in its payload word 1; the FIFO holds at most
 * init_options.quarantine_blocks blocks.
 */
#ifndef PALLOC_HARDEN_H
#define PALLOC_HARDEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HARDEN_FREED_MAPPED 64
#define HARDEN_QUARANTINE_MAX 65536
#define HARDEN_JUNK_BYTE 0xdf

void harden_note_freed_mapped(const void *payload);
bool harden_was_freed_mapped(const void *payload);

/* Whether payload is a block sitting in quarantine (a search, for marked blocks only). */
bool harden_in_quarantine(const void *payload);
/* A validated in-use block being freed: junk-fill and/or quarantine it as the options say.
 * Returns the block to give back now (payload itself, or the oldest quarantined one), or NULL
 * when nothing is to be freed yet. */
void *harden_on_free(void *payload);

/* Whether size is a size the block with this tag could have been allocated with: not more than
 * its usable bytes, and not less than a quarter of them (realloc shrinks in place down to
 * half, aligned and mapped blocks carry a little slack). */
bool harden_free_sized_ok(uint64_t tag, size_t size);

/* The quarantine's lock across fork (init.c). */
void harden_fork_prepare(void);
void harden_fork_parent(void);
void harden_fork_child(void);

#endif /* PALLOC_HARDEN_H */
