/* palloc-tp.c: instantiates the palloc:* probes and their tracepoint definitions.
 *
 * LTTNG_UST_TP_IP_PARAM names the argument that becomes each event's ip context: the
 * program's return address (caller) rather than an address inside this library, so that
 * `babeltrace2 --debug-info` resolves it to the program's function and line.
 */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#define LTTNG_UST_TP_IP_PARAM caller
#include "palloc-tp.h"
