/* trace-read.h: reads an LTTng (CTF) trace folder with libbabeltrace2 and hands every event,
 * decoded, to a callback, in timestamp order across all streams. */
#ifndef PALLOC_TRACE_READ_H
#define PALLOC_TRACE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

typedef void pt_event_fn(const struct pt_event *event, void *data);

struct pt_read_result {
  uint64_t events;           /* event messages read, of every kind */
  uint64_t discarded_events; /* events the tracer reported lost */
  unsigned traces;           /* CTF traces (metadata files) found under the folder */
};

/* Reads every trace under dir (LTTng's session folder or any folder inside it). 0 on success;
 * otherwise -1 and one line in message (what is wrong with dir). */
int pt_read_trace(const char *dir, pt_event_fn *on_event, void *data,
                  struct pt_read_result *result, char *message, size_t message_size);

#endif
