/* sbrk_mapped.c: the sbrk backend's blocks that live in a mapping of their own.
 *
 * Owns every block of SBRK_MAP_THRESHOLD bytes or more, and the big-alignment blocks, and the
 * registry that says which addresses are such blocks (so that backend_owns() never reads a
 * wild pointer's tag). Every function runs with the backend's lock held.
 *
 * A mapped block (base is page-aligned, off = payload - base, a multiple of 16, >= 16):
 *
 *   base                    payload (aligned as asked)                       base + len
 *   |                       |                                                |
 *   v                       v                                                v
 *   +-- ... --+-----+-------+---------------------------------------+-- ... -+
 *   | unused  | off | S|M|U | usable: S - 8 bytes                   | slack  |
 *   +-- ... --+-----+-------+---------------------------------------+-- ... -+
 *                    header (no footer: nothing walks a mapped block's neighbours)
 *
 *   S = the block size: the bytes from the header to the last page's end, rounded down to 16;
 *   len = the mapping's length = align_up(off - 8 + S, page).
 *
 * The registry is an open-addressing hash set of payload addresses (linear probing, deletion
 * by backward shift) in memory from os_map, doubled when half full.
 * Freed mappings, up to SBRK_MAP_CACHE_BYTES of them, are kept (the cache) and reused for a
 * request they hold: whole when at most twice its size (their pages are in memory already), else
 * with their tail unmapped. When the heap takes more memory from the OS (a mapping the cache
 * cannot serve, a mapping grown, the break raised) and would then hold more than at its peak,
 * cached mappings of at least the excess are unmapped first, the fewest and smallest that
 * cover it (sbrk_make_room,
 * mapped_cache_evict): the cache never raises the heap's peak (bench/replay's growing_arrays:
 * utilization 0.805 -> 0.935 with blocks of 128 KiB and more mapped), and below the peak it
 * keeps its mappings for reuse (bench/'s large: page faults).
 * I9 (checked by mapped_check): every registered block has U and M set and bit 3 clear, its
 *    size fills its mapping's last page (less than 16 bytes of slack), its offset word is a multiple of 16 >= 16, and the registry's
 *    count and byte totals match the blocks; the cache's mappings are page multiples whose
 *    lengths add up to its byte count, within SBRK_MAP_CACHE_BYTES.
 */
#include "config.h"
#include "sbrk/sbrk_backend.h"

#include "os.h"
#include "util/bits.h"
#include "util/report.h"

#include <string.h>

static struct {
  uintptr_t *slots;      /* payload addresses; 0 = empty */
  size_t capacity;       /* slots, a power of two (0 before the first block) */
  size_t count;          /* live mapped blocks */
  uint64_t total_len;    /* bytes of their mappings */
  uint64_t block_bytes;  /* sum of their tag sizes */
} registry;

/* Mappings of freed blocks kept for the next big request (a page fault costs more than the
 * bytes: `large` in bench/ takes 418,000 page faults instead of 967,000; glibc 331,000): at
 * most MAP_CACHE_SLOTS of them, together at most SBRK_MAP_CACHE_BYTES. */
#define MAP_CACHE_SLOTS 8
static struct {
  char *base[MAP_CACHE_SLOTS]; /* NULL for an empty slot */
  size_t len[MAP_CACHE_SLOTS];
  uint64_t bytes;              /* sum of len */
} cache;

/* ---- The block's words ------------------------------------------------------------------ */

static inline size_t *offset_word(void *payload) { return (size_t *)payload - 2; }
static inline char *mapping_base(void *payload) { return (char *)payload - *offset_word(payload); }

static inline size_t mapping_len(void *payload, size_t block_size)
{
  return align_up_addr(*offset_word(payload) - 8 + block_size, os_page_size());
}

static void write_mapped_tags(void *payload, size_t block_size)
{
  uint64_t tag = tag_sealed(payload, (uint64_t)block_size | TAG_IN_USE | TAG_MAPPED);
  *block_tag(payload) = tag;
}

/* The block size that fills a mapping ending at map_end, for a payload at payload. */
static size_t block_size_to(char *payload, char *map_end)
{
  return (size_t)align_down_addr((uintptr_t)(map_end - (payload - 8)), 16);
}

/* ---- The registry ----------------------------------------------------------------------- */

static size_t slot_of(uintptr_t key, size_t capacity)
{
  uint64_t hash = (uint64_t)key * 0x9e3779b97f4a7c15ull;
  return (size_t)(hash >> 20) & (capacity - 1);
}

static size_t find_slot(uintptr_t key)
{
  size_t i = slot_of(key, registry.capacity);
  while (registry.slots[i] != 0 && registry.slots[i] != key)
    i = (i + 1) & (registry.capacity - 1);
  return i;
}

static bool registry_grow(void)
{
  size_t capacity = registry.capacity ? registry.capacity * 2 : 512;
  uintptr_t *slots = os_map(capacity * sizeof *slots);
  if (slots == NULL)
    return false;
  uintptr_t *old = registry.slots;
  size_t old_capacity = registry.capacity;
  registry.slots = slots;
  registry.capacity = capacity;
  for (size_t i = 0; i < old_capacity; i++)
    if (old[i] != 0)
      registry.slots[find_slot(old[i])] = old[i];
  if (old != NULL)
    os_unmap(old, old_capacity * sizeof *old);
  return true;
}

static bool registry_add(void *payload)
{
  if ((registry.count + 1) * 2 > registry.capacity && !registry_grow())
    return false;
  registry.slots[find_slot((uintptr_t)payload)] = (uintptr_t)payload;
  registry.count++;
  return true;
}

static bool registry_has(const void *payload)
{
  return registry.capacity != 0 && registry.slots[find_slot((uintptr_t)payload)] != 0;
}

/* Remove a present key, shifting back the entries of its probe run. */
static void registry_remove(void *payload)
{
  size_t mask = registry.capacity - 1;
  size_t hole = find_slot((uintptr_t)payload);
  registry.slots[hole] = 0;
  registry.count--;
  for (size_t i = (hole + 1) & mask; registry.slots[i] != 0; i = (i + 1) & mask) {
    size_t home = slot_of(registry.slots[i], registry.capacity);
    bool home_is_cyclically_after_hole = ((i - home) & mask) < ((i - hole) & mask);
    if (!home_is_cyclically_after_hole) {
      registry.slots[hole] = registry.slots[i];
      registry.slots[i] = 0;
      hole = i;
    }
  }
}

/* ---- Mapped blocks ---------------------------------------------------------------------- */

static void account_block(size_t len, size_t block_size, int sign)
{
  registry.total_len += (uint64_t)((int64_t)sign * (int64_t)len);
  registry.block_bytes += (uint64_t)((int64_t)sign * (int64_t)block_size);
}

/* ---- The cache of freed mappings ------------------------------------------------------- */

static void cache_drop(int i)
{
  os_unmap(cache.base[i], cache.len[i]);
  cache.bytes -= cache.len[i];
  cache.base[i] = NULL;
}

/* Keep the mapping [base, base + len) for reuse; false when it does not fit in the cache. */
static bool cache_put(char *base, size_t len)
{
  if (len > SBRK_MAP_CACHE_BYTES)
    return false;
  for (int i = 0; i < MAP_CACHE_SLOTS && cache.bytes + len > SBRK_MAP_CACHE_BYTES; i++)
    if (cache.base[i] != NULL)
      cache_drop(i); /* make room: the older ones go */
  for (int i = 0; i < MAP_CACHE_SLOTS; i++) {
    if (cache.base[i] == NULL) {
      cache.base[i] = base;
      cache.len[i] = len;
      cache.bytes += len;
      return true;
    }
  }
  return false;
}

/* The smallest cached mapping of at least len bytes, or NULL; *got = its length, cut to len
 * when it was more than twice that. */
static char *cache_take(size_t len, size_t *got)
{
  int best = -1;
  for (int i = 0; i < MAP_CACHE_SLOTS; i++)
    if (cache.base[i] != NULL && cache.len[i] >= len &&
        (best < 0 || cache.len[i] < cache.len[best]))
      best = i;
  if (best < 0)
    return NULL;
  char *base = cache.base[best];
  *got = cache.len[best];
  if (*got / 2 > len) { /* much too big: the tail goes (a little too big: kept whole) */
    os_unmap(base + len, *got - len);
    *got = len;
  }
  cache.bytes -= cache.len[best];
  cache.base[best] = NULL;
  return base;
}

/* The cached mapping to unmap for want bytes: the smallest of at least want bytes, else the
 * largest; -1 when the cache is empty. */
static int cache_victim(size_t want)
{
  int fit = -1, largest = -1;
  for (int i = 0; i < MAP_CACHE_SLOTS; i++) {
    if (cache.base[i] == NULL)
      continue;
    if (cache.len[i] >= want && (fit < 0 || cache.len[i] < cache.len[fit]))
      fit = i;
    if (largest < 0 || cache.len[i] > cache.len[largest])
      largest = i;
  }
  return fit >= 0 ? fit : largest;
}

size_t mapped_cache_evict(size_t bytes)
{
  size_t released = 0;
  for (int victim; released < bytes && (victim = cache_victim(bytes - released)) >= 0;) {
    released += cache.len[victim];
    cache_drop(victim);
  }
  return released;
}

size_t mapped_trim(void)
{
  size_t released = (size_t)cache.bytes;
  for (int i = 0; i < MAP_CACHE_SLOTS; i++)
    if (cache.base[i] != NULL)
      cache_drop(i);
  return released;
}

static int check_cache(void)
{
  uint64_t sum = 0;
  for (int i = 0; i < MAP_CACHE_SLOTS; i++) {
    if (cache.base[i] == NULL)
      continue;
    if (cache.len[i] % os_page_size() != 0 || (uintptr_t)cache.base[i] % os_page_size() != 0)
      return CHECK_FAIL(9, "cached mapping not made of whole pages", cache.base[i]);
    sum += cache.len[i];
  }
  if (sum != cache.bytes || sum > SBRK_MAP_CACHE_BYTES)
    return CHECK_FAIL(9, "cached mappings differ from the cache's byte count", NULL);
  return 0;
}

/* ---- Mapped blocks, continued ------------------------------------------------------------ */

/* A block of block_size bytes in a cached mapping (payload 16 bytes in), or NULL. */
static void *alloc_from_cache(size_t block_size)
{
  size_t len;
  if (!align_up_checked(block_size + 8, os_page_size(), &len))
    return NULL;
  char *base = cache_take(len, &len);
  if (base == NULL)
    return NULL;
  char *payload = base + 16;
  if (!registry_add(payload)) {
    os_unmap(base, len);
    return NULL;
  }
  *offset_word(payload) = 16;
  size_t size = block_size_to(payload, base + len);
  write_mapped_tags(payload, size);
  account_block(len, size, +1);
  return payload;
}

void *mapped_alloc(size_t block_size, size_t alignment, size_t *dirty)
{
  size_t page = os_page_size();
  void *reused = alignment <= 16 ? alloc_from_cache(block_size) : NULL;
  *dirty = reused ? tag_size(*block_tag(reused)) - BACKEND_BLOCK_OVERHEAD : 0;
  if (reused != NULL)
    return reused;
  size_t extra = alignment > 16 ? alignment : 0;
  size_t total;
  if (block_size > SIZE_MAX / 2 || extra > SIZE_MAX / 4 ||
      !align_up_checked(block_size + 8 + extra, page, &total))
    return NULL;
  sbrk_make_room(total); /* the cache could not serve: it goes before the peak grows */
  char *raw = os_map(total);
  if (raw == NULL)
    return NULL;
  char *payload = (char *)align_up_addr((uintptr_t)raw + 16, alignment > 16 ? alignment : 16);
  char *base = (char *)align_down_addr((uintptr_t)(payload - 16), page);
  char *map_end = (char *)align_up_addr((uintptr_t)(payload - 8 + block_size), page);
  if (base > raw)
    os_unmap(raw, (size_t)(base - raw));
  if (raw + total > map_end)
    os_unmap(map_end, (size_t)(raw + total - map_end));
  if (!registry_add(payload)) {
    os_unmap(base, (size_t)(map_end - base));
    return NULL;
  }
  *offset_word(payload) = (size_t)(payload - base);
  size_t size = block_size_to(payload, map_end);
  write_mapped_tags(payload, size);
  account_block((size_t)(map_end - base), size, +1);
  return payload;
}

bool mapped_owns(const void *payload) { return registry_has(payload); }

void mapped_free(void *payload)
{
  size_t size = tag_size(*block_tag(payload));
  size_t len = mapping_len(payload, size);
  char *base = mapping_base(payload);
  registry_remove(payload);
  account_block(len, size, -1);
  if (!cache_put(base, len))
    os_unmap(base, len);
}

bool mapped_resize(void *payload, size_t new_block_size)
{
  size_t size = tag_size(*block_tag(payload));
  if (new_block_size > size)
    return false;
  size_t len = mapping_len(payload, size);
  size_t new_len = mapping_len(payload, new_block_size);
  char *base = mapping_base(payload);
  if (new_len < len && os_unmap(base + new_len, len - new_len)) {
    size_t new_size = block_size_to(payload, base + new_len);
    account_block(len, size, -1);
    account_block(new_len, new_size, +1);
    write_mapped_tags(payload, new_size);
  }
  return true;
}

void *mapped_remap(void *payload, size_t new_block_size)
{
  size_t size = tag_size(*block_tag(payload));
  size_t off = *offset_word(payload);
  size_t len = mapping_len(payload, size);
  size_t new_len;
  if (new_block_size > SIZE_MAX / 2 || !align_up_checked(off - 8 + new_block_size,
                                                         os_page_size(), &new_len))
    return NULL;
  if (new_len > len)
    sbrk_make_room(new_len - len);
  char *base = os_remap(mapping_base(payload), len, new_len);
  if (base == NULL)
    return NULL;
  registry_remove(payload);
  char *moved = base + off;
  registry_add(moved); /* cannot fail: one entry was just freed */
  size_t new_size = block_size_to(moved, base + new_len);
  account_block(len, size, -1);
  account_block(new_len, new_size, +1);
  write_mapped_tags(moved, new_size);
  return moved;
}

/* ---- Checking and statistics ------------------------------------------------------------ */

static int check_mapped_block(void *payload, uint64_t *len_sum, uint64_t *size_sum)
{
  uint64_t tag = *block_tag(payload);
  size_t size = tag_size(tag);
  size_t off = *offset_word(payload);
  if ((tag & (TAG_IN_USE | TAG_MAPPED)) != (TAG_IN_USE | TAG_MAPPED) || (tag & SBRK_TAG_BIT3) ||
      !tag_seal_ok(payload, tag))
    return CHECK_FAIL(9, "mapped block with wrong flags", payload);
  if (off < 16 || off % 16 != 0 || size < BACKEND_MIN_BLOCK || ((uintptr_t)payload & 15))
    return CHECK_FAIL(9, "mapped block with a bad size or offset", payload);
  if (block_size_to(payload, mapping_base(payload) + mapping_len(payload, size)) != size)
    return CHECK_FAIL(9, "mapped block size does not fill its mapping", payload);
  *len_sum += mapping_len(payload, size);
  *size_sum += size;
  return 0;
}

int mapped_check(void)
{
  uint64_t len_sum = 0, size_sum = 0, count = 0;
  for (size_t i = 0; i < registry.capacity; i++) {
    if (registry.slots[i] == 0)
      continue;
    count++;
    int broken = check_mapped_block((void *)registry.slots[i], &len_sum, &size_sum);
    if (broken)
      return broken;
    if (registry.slots[find_slot(registry.slots[i])] != registry.slots[i])
      return CHECK_FAIL(9, "mapped block unreachable in the registry", (void *)registry.slots[i]);
  }
  if (count != registry.count || len_sum != registry.total_len ||
      size_sum != registry.block_bytes)
    return CHECK_FAIL(9, "mapped block totals differ from the registry's", NULL);
  return check_cache();
}

uint64_t mapped_total_len(void) { return registry.total_len + cache.bytes; }
uint64_t mapped_block_bytes(void) { return registry.block_bytes; }
uint64_t mapped_block_count(void) { return registry.count; }
