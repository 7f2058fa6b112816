/* export.h: the one marker for names palloc exports; everything else is hidden. */
#ifndef PALLOC_EXPORT_H
#define PALLOC_EXPORT_H
#define PALLOC_EXPORT __attribute__((visibility("default")))
#endif
