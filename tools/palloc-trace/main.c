/* main.c: palloc-trace [OPTION]... DIR: reads a palloc LTTng trace and reports on it.
 *
 * Reads the trace once (trace-read.c) into the model (model.c), then prints the text report,
 * the short summary or JSON on stdout and, with --svg, writes the chart. Any problem with the
 * trace is one line on stderr, "palloc-trace: DIR: what", and exit status 1; usage errors 2.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "report.h"
#include "symbols.h"
#include "trace-read.h"

#define DEFAULT_TOP 10

struct options {
  bool json, summary;
  const char *svg_path;
  unsigned top;
  const char *dir;
};

static void usage(FILE *out)
{
  fputs("Usage: palloc-trace [OPTION]... DIR\n"
        "Report on the palloc LTTng trace in DIR (palloc-run --trace=DIR records one):\n"
        "calls, requested and usable bytes, peaks, leaks by caller, hot spots, temporary\n"
        "allocations, histograms, double frees, per process and thread.\n"
        "\n"
        "  --json        print the report as one JSON object instead of text\n"
        "  --summary     print only the short summary (what palloc-run --trace prints)\n"
        "  --svg=FILE    also write a chart of live bytes and heap size over time (SVG)\n"
        "  --top=N       rows in each ranking (default 10)\n"
        "  --help        print this help and exit\n"
        "  --version     print the version and exit\n"
        "\n"
        "Exit status: 0 on success, 1 when DIR is not a readable palloc trace, 2 for a usage\n"
        "error. See palloc-trace(1).\n",
        out);
}

static int usage_error(const char *message)
{
  fprintf(stderr, "palloc-trace: %s\nTry 'palloc-trace --help' for more information.\n",
          message);
  return 2;
}

/* 0 to go on, else the exit status (-1: exit 0 after --help or --version). */
static int parse_options(int argc, char **argv, struct options *options)
{
  static const struct option long_options[] = {
    { "json", no_argument, NULL, 'j' },     { "summary", no_argument, NULL, 's' },
    { "svg", required_argument, NULL, 'g' }, { "top", required_argument, NULL, 't' },
    { "help", no_argument, NULL, 'h' },     { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  *options = (struct options){ .top = DEFAULT_TOP };
  opterr = 0;
  int option;
  while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    char *end;
    switch (option) {
    case 'j': options->json = true; break;
    case 's': options->summary = true; break;
    case 'g': options->svg_path = optarg; break;
    case 't':
      options->top = (unsigned)strtoul(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || options->top == 0)
        return usage_error("--top needs a positive number");
      break;
    case 'h': usage(stdout); return -1;
    case 'V': printf("palloc-trace (palloc) %s\n", PACKAGE_VERSION); return -1;
    default: return usage_error("unknown option or missing value");
    }
  }
  if (optind != argc - 1)
    return usage_error(optind == argc ? "no trace folder given" : "one trace folder only");
  options->dir = argv[optind];
  return 0;
}

struct counting {
  struct pt_model *model;
  uint64_t palloc_events;
};

static void on_event(const struct pt_event *event, void *data)
{
  struct counting *counting = data;
  if (event->kind != PT_EV_MODULE && event->kind != PT_EV_PROCNAME)
    counting->palloc_events++;
  pt_model_add(counting->model, event);
}

static int write_reports(const struct options *options, struct pt_report *report)
{
  if (options->json)
    pt_report_json(stdout, report);
  else if (options->summary)
    pt_report_summary(stdout, report);
  else
    pt_report_text(stdout, report);
  if (options->svg_path != NULL && pt_report_svg(options->svg_path, report) != 0) {
    fprintf(stderr, "palloc-trace: %s: %s\n", options->svg_path, strerror(errno));
    return 1;
  }
  if (fflush(stdout) != 0) {
    fprintf(stderr, "palloc-trace: standard output: %s\n", strerror(errno));
    return 1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  struct options options;
  int status = parse_options(argc, argv, &options);
  if (status != 0)
    return status < 0 ? 0 : status;
  struct pt_model model;
  pt_model_init(&model);
  struct counting counting = { &model, 0 };
  struct pt_report report = { .trace_dir = options.dir, .model = &model, .top = options.top };
  char message[1024];
  if (pt_read_trace(options.dir, on_event, &counting, &report.read, message, sizeof message)) {
    fprintf(stderr, "palloc-trace: %s\n", message);
    status = 1;
  } else if (counting.palloc_events == 0) {
    fprintf(stderr, "palloc-trace: %s: no palloc events in this trace (record palloc:* "
                    "events: palloc-run --trace)\n", options.dir);
    status = 1;
  } else {
    pt_model_finish(&model);
    status = write_reports(&options, &report);
  }
  pt_symbols_free(&model);
  pt_model_free(&model);
  return status;
}
