/* harden.h: the front end's protections against misuse that go beyond validating a pointer.
 *
 * Owns four things, all on slow paths:
 *   - a ring of the last HARDEN_FREED_MAPPED payloads of blocks mapped on their own that were
 *     freed: their memory goes back to the OS, so a second free would otherwise only look like
 *     a pointer palloc never returned; the ring lets the report say "double free";
 *   - the optional protections of free (PALLOC_JUNK, PALLOC_QUARANTINE; init.h turns the
 *     thread caches off when either is on, so that every free comes here): junk-filling a freed
 *     block, and a quarantine, a FIFO of freed blocks whose reuse is delayed;
 *   - the optional check of free_sized's size (PALLOC_CHECK_FREE_SIZED);
 *   - the optional tail of a block (PALLOC_CANARY, PALLOC_GUARD): its last 8 usable bytes hold
 *     a keyed word, tail word = (n | G << 63) ^ mix(payload), that gives the size asked for (n)
 *     and whether a guard page follows it (G). With PALLOC_CANARY the bytes from payload + n up
 *     to the tail word (or to the guard page) hold HARDEN_CANARY_BYTE, and every block the API
 *     hands out has a tail (the thread caches are off); with PALLOC_GUARD a mapped block has
 *     one, and, from the first page boundary at or after payload + n, a PROT_NONE page:
 *
 *       payload          payload + n       page boundary     +1 page          usable end
 *       | asked bytes ... | canary bytes ... | PROT_NONE page  | (unused) ... | tail word |
 *
 *     free and realloc check the tail and the canary bytes (a damaged one is "heap overflow")
 *     and make the guard page accessible again before the block moves or goes back (a backend
 *     may reuse a mapping); malloc_usable_size answers n.
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

#define HARDEN_CANARY_BYTE 0xca

/* Whether a block with this tag has a tail (the options say so). */
bool harden_has_tail(uint64_t tag);
/* The request to make of the backend for n bytes asked (n itself when no option is on). */
size_t harden_tail_request(size_t n);
/* Write the tail (and the canary bytes, and the guard page) of a block asked with n bytes;
 * payload's block was requested with harden_tail_request(n) bytes or more. */
void harden_tail_set(void *payload, size_t n);
/* Check payload's tail and canary bytes before fn frees or moves it: true when sound; else
 * "heap overflow" is reported (false: drop the call, with PALLOC_ON_MISUSE=continue). */
bool harden_tail_ok(void *payload, const char *fn);
/* The size asked for a block whose tail is sound. */
size_t harden_tail_asked(void *payload);
/* Make a block's guard page (if any) accessible again: before it is freed or moved. */
void harden_tail_unguard(void *payload);

/* The quarantine's lock across fork (init.c). */
void harden_fork_prepare(void);
void harden_fork_parent(void);
void harden_fork_child(void);

#endif /* PALLOC_HARDEN_H */
