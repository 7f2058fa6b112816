/* mmap_backend.h: the mmap backend's tunables, for its tests and the documentation. */
#ifndef PALLOC_MMAP_BACKEND_H
#define PALLOC_MMAP_BACKEND_H

#define MMAP_REGION_SIZE ((size_t)4 << 20)       /* regions: 4 MiB, aligned to 4 MiB */
#define MMAP_MAPPED_THRESHOLD ((size_t)512 << 10) /* blocks from here up get a mapping each */
#define MMAP_RELEASE_MIN ((size_t)1 << 20)        /* free blocks this large give pages back */
#define MMAP_TOP_PAD ((size_t)128 << 10)          /* dirty top bytes kept when trimming */
#define MMAP_TRIM_THRESHOLD ((size_t)1 << 20)     /* trim the top once this much more is dirty */
#define MMAP_BIN_COUNT 128

#endif /* PALLOC_MMAP_BACKEND_H */
