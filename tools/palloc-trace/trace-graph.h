/* trace-graph.h: what trace-read.c uses of trace-graph.c (babeltrace2). */
#ifndef PALLOC_TRACE_GRAPH_H
#define PALLOC_TRACE_GRAPH_H

#include <glib.h>

#include "trace-read.h"

/* The folders under dir that hold a CTF trace (a `metadata` file), sorted; NULL with one line
 * in message when there is none, dir is missing, or a metadata file is cut short. */
GPtrArray *pt_find_traces(const char *dir, char *message, size_t message_size);

/* How many streams (source output ports) the traces have. 0, or -1 with message set. */
int pt_count_streams(GPtrArray *traces, uint64_t *streams, const char *dir, char *message,
                     size_t message_size);

/* Reads the streams whose index % parts == part, in timestamp order, adding to result's
 * counters. 0, or -1 with message set. */
int pt_read_share(GPtrArray *traces, unsigned part, unsigned parts, pt_event_fn *on_event,
                  void *data, struct pt_read_result *result, const char *dir, char *message,
                  size_t message_size);

#endif
