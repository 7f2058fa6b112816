/* trace-read.c: reads a trace with one babeltrace2 graph per processor, merged in time order.
 *
 * Decoding CTF is most of the cost (babeltrace2's ctf plugin, about 0.8 us per palloc event
 * here), so the streams are shared out among up to one worker per online processor. Each
 * worker is a child process (fork) running its own graph (trace-graph.c) over its share of
 * the streams; it writes each decoded event as a struct wire record into a pipe, and ends
 * with a record of type WIRE_END carrying its counters and, on failure, its error line. The
 * parent merges the workers' records by timestamp (each worker's are in order already), so
 * the callback sees the same sequence as from a single graph with babeltrace2's muxer.
 * Processes rather than threads: libbabeltrace2 does not promise that graphs in several
 * threads may share its plugins. One worker, one stream, or one stream holding most of the
 * bytes: the graph runs in this process. PALLOC_TRACE_READERS=N forces N workers (tests).
 */
#define _GNU_SOURCE
#include "trace-read.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace-graph.h"

#define MAX_WORKERS 8
#define MESSAGE_SIZE 1024

enum wire_type { WIRE_EVENT, WIRE_END };

struct wire {
  uint32_t type;       /* enum wire_type */
  uint32_t path_size;  /* bytes of the path that follow (with its NUL), 0 for none */
  struct pt_event event; /* pointers are meaningless on the wire */
  char procname[24];   /* LTTng's procname context has at most 16 bytes */
  struct pt_read_result result; /* WIRE_END: the worker's counters */
  int32_t status;      /* WIRE_END: 0, or -1 and message */
  char message[MESSAGE_SIZE];
};

struct worker {
  pid_t pid;
  FILE *in;
  bool done;
  struct wire record;  /* the next event, while !done */
  char *path;          /* its path, if any */
};

/* ---- Worker side ------------------------------------------------------------------------- */

static void send_event(const struct pt_event *event, void *data)
{
  FILE *out = data;
  struct wire record;
  record.type = WIRE_EVENT;
  record.event = *event;
  record.path_size = event->path != NULL ? (uint32_t)strlen(event->path) + 1 : 0;
  record.procname[0] = '\0';
  if (event->procname != NULL)
    g_strlcpy(record.procname, event->procname, sizeof record.procname);
  fwrite(&record, offsetof(struct wire, result), 1, out);
  if (record.path_size != 0)
    fwrite(event->path, record.path_size, 1, out);
}

static void run_worker(GPtrArray *traces, unsigned part, unsigned parts, const char *dir,
                       FILE *out)
{
  struct wire end = { .type = WIRE_END };
  end.status = pt_read_share(traces, part, parts, send_event, out, &end.result, dir,
                             end.message, sizeof end.message);
  fwrite(&end, sizeof end, 1, out);
  fflush(out);
  _exit(ferror(out) ? 1 : 0);
}

/* ---- Parent side ------------------------------------------------------------------------- */

static bool start_worker(struct worker *worker, GPtrArray *traces, unsigned part,
                         unsigned parts, const char *dir)
{
  int fds[2];
  if (pipe(fds) != 0)
    return false;
  fflush(NULL);
  worker->pid = fork();
  if (worker->pid == 0) {
    close(fds[0]);
    FILE *out = fdopen(fds[1], "w");
    setvbuf(out, NULL, _IOFBF, 1 << 16);
    run_worker(traces, part, parts, dir, out);
  }
  close(fds[1]);
  if (worker->pid < 0) {
    close(fds[0]);
    return false;
  }
  worker->in = fdopen(fds[0], "r");
  setvbuf(worker->in, NULL, _IOFBF, 1 << 16);
  return true;
}

/* Reads the worker's next record: an event (true), or its end (false: done, counters added,
 * its failure noted in message). */
static bool next_record(struct worker *worker, struct pt_read_result *result, int *status,
                        char *message, size_t message_size)
{
  struct wire *record = &worker->record;
  g_free(worker->path);
  worker->path = NULL;
  if (fread(record, offsetof(struct wire, result), 1, worker->in) == 1 &&
      record->type == WIRE_EVENT) {
    if (record->path_size != 0) {
      worker->path = g_malloc(record->path_size);
      if (fread(worker->path, record->path_size, 1, worker->in) != 1)
        worker->path[0] = '\0';
      worker->path[record->path_size - 1] = '\0';
    }
    record->event.path = worker->path;
    record->event.procname = record->procname[0] != '\0' ? record->procname : NULL;
    return true;
  }
  size_t rest = sizeof *record - offsetof(struct wire, result);
  if (record->type == WIRE_END &&
      fread((char *)record + offsetof(struct wire, result), rest, 1, worker->in) == 1) {
    result->events += record->result.events;
    result->discarded_events += record->result.discarded_events;
    if (record->status != 0 && *status == 0)
      g_strlcpy(message, record->message, message_size);
  } else if (*status == 0) {
    snprintf(message, message_size, "a trace reader stopped early (its process failed)");
    record->status = -1;
  }
  if (record->status != 0)
    *status = -1;
  worker->done = true;
  return false;
}

/* The worker holding the earliest event, or NULL when all are done. */
static struct worker *earliest(struct worker *workers, unsigned count)
{
  struct worker *first = NULL;
  for (unsigned i = 0; i < count; i++)
    if (!workers[i].done && (first == NULL || workers[i].record.event.ts < first->record.event.ts))
      first = &workers[i];
  return first;
}

static void finish_workers(struct worker *workers, unsigned count)
{
  for (unsigned i = 0; i < count; i++) {
    if (workers[i].in != NULL)
      fclose(workers[i].in);
    g_free(workers[i].path);
    if (workers[i].pid > 0)
      waitpid(workers[i].pid, NULL, 0);
  }
}

static int read_in_workers(GPtrArray *traces, unsigned parts, pt_event_fn *on_event,
                           void *data, struct pt_read_result *result, const char *dir,
                           char *message, size_t message_size)
{
  struct worker workers[MAX_WORKERS] = { 0 };
  int status = 0;
  for (unsigned i = 0; i < parts; i++) {
    if (!start_worker(&workers[i], traces, i, parts, dir)) {
      snprintf(message, message_size, "%s: cannot start a trace reader: %s", dir,
               strerror(errno));
      finish_workers(workers, i);
      return -1;
    }
  }
  for (unsigned i = 0; i < parts; i++)
    next_record(&workers[i], result, &status, message, message_size);
  struct worker *worker;
  while ((worker = earliest(workers, parts)) != NULL) {
    if (status == 0)
      on_event(&worker->record.event, data);
    next_record(worker, result, &status, message, message_size);
  }
  finish_workers(workers, parts);
  if (status != 0 && strncmp(message, dir, strlen(dir)) != 0) {
    char detail[MESSAGE_SIZE];
    g_strlcpy(detail, message, sizeof detail);
    snprintf(message, message_size, "%s: %s", dir, detail);
  }
  return status;
}

/* Whether the largest stream file holds less than BALANCED_SHARE of the bytes: a thread's
 * events go to the stream of the CPU it runs on, so a single-threaded program fills one
 * stream and several readers would only add the cost of the pipes. */
#define BALANCED_SHARE 0.6
static bool streams_are_balanced(GPtrArray *traces)
{
  uint64_t total = 0, largest = 0;
  for (guint i = 0; i < traces->len; i++) {
    GDir *folder = g_dir_open(traces->pdata[i], 0, NULL);
    const char *name;
    while (folder != NULL && (name = g_dir_read_name(folder)) != NULL) {
      char *path = g_build_filename(traces->pdata[i], name, NULL);
      struct stat st;
      if (strcmp(name, "metadata") != 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        total += (uint64_t)st.st_size;
        largest = MAX(largest, (uint64_t)st.st_size);
      }
      g_free(path);
    }
    if (folder != NULL)
      g_dir_close(folder);
  }
  return total > 0 && (double)largest < BALANCED_SHARE * (double)total;
}

static unsigned worker_count(GPtrArray *traces, uint64_t streams)
{
  const char *forced = getenv("PALLOC_TRACE_READERS");
  if ((forced == NULL || atoi(forced) <= 0) && !streams_are_balanced(traces))
    return 1;
  long processors = sysconf(_SC_NPROCESSORS_ONLN);
  if (forced != NULL && atoi(forced) > 0)
    processors = atoi(forced);
  uint64_t count = MIN(streams, (uint64_t)MAX(processors, 1));
  return (unsigned)MIN(count, MAX_WORKERS);
}

int pt_read_trace(const char *dir, pt_event_fn *on_event, void *data,
                  struct pt_read_result *result, char *message, size_t message_size)
{
  memset(result, 0, sizeof *result);
  GPtrArray *traces = pt_find_traces(dir, message, message_size);
  if (traces == NULL)
    return -1;
  result->traces = traces->len;
  uint64_t streams = 0;
  int status = pt_count_streams(traces, &streams, dir, message, message_size);
  if (status == 0) {
    unsigned parts = worker_count(traces, streams);
    if (parts <= 1)
      status = pt_read_share(traces, 0, 1, on_event, data, result, dir, message, message_size);
    else
      status = read_in_workers(traces, parts, on_event, data, result, dir, message,
                               message_size);
  }
  g_ptr_array_free(traces, TRUE);
  return status;
}
