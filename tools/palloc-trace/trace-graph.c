/* trace-graph.c: the babeltrace2 graph that reads a trace folder, or a share of its streams.
 *
 *   source.ctf.fs (every folder holding a `metadata` file)
 *     -> filter.utils.muxer (only when the share has more than one stream)
 *     -> a simple sink of our own (consume_messages), which decodes each event message into
 *        a struct pt_event and calls the caller's callback, in timestamp order.
 *
 * Nothing of the CTF format is parsed here: babeltrace2 does it. Looking fields up by name is
 * slow, so the first event of each event class fills a struct class_info (the kind of event
 * and the index of every member palloc-trace reads) that later events of the class reuse.
 * Errors of the library become one line: the root cause it reports.
 */
#define _GNU_SOURCE
#include "trace-graph.h"

#include <babeltrace2/babeltrace.h>
#include <errno.h>
#include <ftw.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Payload members palloc-trace reads; index into class_info.member. */
enum member {
  M_PTR, M_IN_PTR, M_SIZE, M_NMEMB, M_USABLE, M_CALLER, M_ADDR, M_LEN, M_HOW,
  M_BADDR, M_MEMSZ, M_PATH, M_IS_PIC, M_PROCNAME, M_COUNT
};
static const char *const member_names[M_COUNT] = {
  "ptr", "in_ptr", "size", "nmemb", "usable", "caller", "addr", "len", "how",
  "baddr", "memsz", "path", "is_pic", "procname",
};
enum context { C_VPID, C_VTID, C_PROCNAME, C_COUNT };
static const char *const context_names[C_COUNT] = { "vpid", "vtid", "procname" };

struct field_ref {
  int index;      /* member index, -1 when the class has no such member */
  bool is_signed; /* read with the signed getter */
};

struct class_info {
  enum pt_kind kind;
  enum pt_function function;
  bool has_clock;
  struct field_ref member[M_COUNT];
  struct field_ref context[C_COUNT];
};

struct reader {
  pt_event_fn *on_event;
  void *data;
  struct pt_read_result *result;
  GHashTable *classes; /* const bt_event_class * -> struct class_info * */
  const bt_event_class *last_class; /* the class of the previous event, and its info */
  struct class_info *last_info;
  bt_message_iterator *iterator;
};

const char *const pt_function_names[PT_FN_COUNT] = {
  "malloc", "calloc", "realloc", "reallocarray", "free", "free_sized", "free_aligned_sized",
  "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
};

/* ---- Which event is it ------------------------------------------------------------------- */

static void classify(struct class_info *info, const char *name)
{
  info->kind = PT_EV_OTHER;
  if (strncmp(name, "palloc:", 7) == 0) {
    const char *short_name = name + 7;
    for (int fn = 0; fn < PT_FN_COUNT; fn++)
      if (strcmp(short_name, pt_function_names[fn]) == 0) {
        info->kind = PT_EV_CALL;
        info->function = (enum pt_function)fn;
      }
    if (strcmp(short_name, "heap_grow") == 0)
      info->kind = PT_EV_HEAP_GROW;
    else if (strcmp(short_name, "heap_shrink") == 0)
      info->kind = PT_EV_HEAP_SHRINK;
    else if (strcmp(short_name, "tcache_flush") == 0)
      info->kind = PT_EV_FLUSH;
  } else if (strcmp(name, "lttng_ust_statedump:bin_info") == 0 ||
             strcmp(name, "lttng_ust_lib:load") == 0) {
    info->kind = PT_EV_MODULE;
  } else if (strcmp(name, "lttng_ust_statedump:procname") == 0) {
    info->kind = PT_EV_PROCNAME;
  }
}

static void find_members(const bt_field_class *structure, const char *const *names,
                         struct field_ref *refs, int count)
{
  for (int i = 0; i < count; i++)
    refs[i].index = -1;
  if (structure == NULL)
    return;
  uint64_t members = bt_field_class_structure_get_member_count(structure);
  for (uint64_t m = 0; m < members; m++) {
    const bt_field_class_structure_member *member =
        bt_field_class_structure_borrow_member_by_index_const(structure, m);
    const char *name = bt_field_class_structure_member_get_name(member);
    bt_field_class_type type = bt_field_class_get_type(
        bt_field_class_structure_member_borrow_field_class_const(member));
    for (int i = 0; i < count; i++)
      if (strcmp(name, names[i]) == 0) {
        refs[i].index = (int)m;
        refs[i].is_signed = bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_SIGNED_INTEGER);
      }
  }
}

static struct class_info *class_info_of(struct reader *reader, const bt_event *event)
{
  const bt_event_class *event_class = bt_event_borrow_class_const(event);
  if (event_class == reader->last_class)
    return reader->last_info;
  struct class_info *info = g_hash_table_lookup(reader->classes, event_class);
  if (info != NULL) {
    reader->last_class = event_class;
    reader->last_info = info;
    return info;
  }
  info = g_new0(struct class_info, 1);
  const char *name = bt_event_class_get_name(event_class);
  classify(info, name != NULL ? name : "");
  find_members(bt_event_class_borrow_payload_field_class_const(event_class), member_names,
               info->member, M_COUNT);
  const bt_stream_class *stream_class = bt_event_class_borrow_stream_class_const(event_class);
  find_members(bt_stream_class_borrow_event_common_context_field_class_const(stream_class),
               context_names, info->context, C_COUNT);
  info->has_clock = bt_stream_class_borrow_default_clock_class_const(stream_class) != NULL;
  g_hash_table_insert(reader->classes, (gpointer)event_class, info);
  return info;
}

/* ---- Decoding ---------------------------------------------------------------------------- */

static const bt_field *member_field(const bt_field *structure, struct field_ref ref)
{
  if (structure == NULL || ref.index < 0)
    return NULL;
  return bt_field_structure_borrow_member_field_by_index_const(structure, (uint64_t)ref.index);
}

static uint64_t read_unsigned(const bt_field *structure, struct field_ref ref)
{
  const bt_field *field = member_field(structure, ref);
  if (field == NULL)
    return 0;
  return ref.is_signed ? (uint64_t)bt_field_integer_signed_get_value(field)
                       : bt_field_integer_unsigned_get_value(field);
}

static int64_t read_signed(const bt_field *structure, struct field_ref ref, int64_t absent)
{
  const bt_field *field = member_field(structure, ref);
  if (field == NULL)
    return absent;
  return ref.is_signed ? bt_field_integer_signed_get_value(field)
                       : (int64_t)bt_field_integer_unsigned_get_value(field);
}

static const char *read_string(const bt_field *structure, struct field_ref ref)
{
  const bt_field *field = member_field(structure, ref);
  if (field == NULL || bt_field_get_class_type(field) != BT_FIELD_CLASS_TYPE_STRING)
    return NULL;
  return bt_field_string_get_value(field);
}

static uint64_t multiply_saturated(uint64_t a, uint64_t b)
{
  uint64_t product;
  return __builtin_mul_overflow(a, b, &product) ? UINT64_MAX : product;
}

static void decode_payload(struct pt_event *out, const struct class_info *info,
                           const bt_field *payload)
{
  const struct field_ref *m = info->member;
  out->ptr = read_unsigned(payload, m[M_PTR]);
  out->in_ptr = read_unsigned(payload, m[M_IN_PTR]);
  out->size = read_unsigned(payload, m[M_SIZE]);
  if (m[M_NMEMB].index >= 0)
    out->size = multiply_saturated(out->size, read_unsigned(payload, m[M_NMEMB]));
  out->usable = read_unsigned(payload, m[M_USABLE]);
  out->caller = read_unsigned(payload, m[M_CALLER]);
  if (info->kind == PT_EV_HEAP_GROW || info->kind == PT_EV_HEAP_SHRINK) {
    out->addr = read_unsigned(payload, m[M_ADDR]);
    out->len = read_unsigned(payload, m[M_LEN]);
    out->how = read_signed(payload, m[M_HOW], -1);
  } else if (info->kind == PT_EV_MODULE) {
    out->baddr = read_unsigned(payload, m[M_BADDR]);
    out->memsz = read_unsigned(payload, m[M_MEMSZ]);
    out->path = read_string(payload, m[M_PATH]);
    out->is_pic = read_unsigned(payload, m[M_IS_PIC]) != 0;
  } else if (info->kind == PT_EV_PROCNAME) {
    out->procname = read_string(payload, m[M_PROCNAME]);
  }
}

static void decode_event(struct pt_event *out, const struct class_info *info,
                         const bt_message *message)
{
  const bt_event *event = bt_message_event_borrow_event_const(message);
  memset(out, 0, sizeof *out);
  out->kind = info->kind;
  out->function = info->function;
  if (info->has_clock) {
    int64_t ns = 0;
    bt_clock_snapshot_get_ns_from_origin(
        bt_message_event_borrow_default_clock_snapshot_const(message), &ns);
    out->ts = (uint64_t)ns;
  }
  const bt_field *context = bt_event_borrow_common_context_field_const(event);
  out->vpid = read_signed(context, info->context[C_VPID], -1);
  out->vtid = read_signed(context, info->context[C_VTID], -1);
  if (info->context[C_PROCNAME].index >= 0)
    out->procname = read_string(context, info->context[C_PROCNAME]);
  decode_payload(out, info, bt_event_borrow_payload_field_const(event));
}

/* ---- The sink ---------------------------------------------------------------------------- */

static void handle_message(struct reader *reader, const bt_message *message)
{
  switch (bt_message_get_type(message)) {
  case BT_MESSAGE_TYPE_EVENT: {
    const bt_event *event = bt_message_event_borrow_event_const(message);
    const struct class_info *info = class_info_of(reader, event);
    reader->result->events++;
    if (info->kind == PT_EV_OTHER)
      return;
    struct pt_event decoded;
    decode_event(&decoded, info, message);
    reader->on_event(&decoded, reader->data);
    break;
  }
  case BT_MESSAGE_TYPE_DISCARDED_EVENTS: {
    uint64_t count = 0;
    if (bt_message_discarded_events_get_count(message, &count) ==
        BT_PROPERTY_AVAILABILITY_AVAILABLE)
      reader->result->discarded_events += count;
    break;
  }
  default:
    break;
  }
}

static bt_graph_simple_sink_component_initialize_func_status
start_sink(bt_message_iterator *iterator, void *data)
{
  ((struct reader *)data)->iterator = iterator;
  return BT_GRAPH_SIMPLE_SINK_COMPONENT_INITIALIZE_FUNC_STATUS_OK;
}

static bt_graph_simple_sink_component_consume_func_status
consume_messages(bt_message_iterator *iterator, void *data)
{
  bt_message_array_const messages;
  uint64_t count;
  switch (bt_message_iterator_next(iterator, &messages, &count)) {
  case BT_MESSAGE_ITERATOR_NEXT_STATUS_OK:
    break;
  case BT_MESSAGE_ITERATOR_NEXT_STATUS_END:
    return BT_GRAPH_SIMPLE_SINK_COMPONENT_CONSUME_FUNC_STATUS_END;
  case BT_MESSAGE_ITERATOR_NEXT_STATUS_AGAIN:
    return BT_GRAPH_SIMPLE_SINK_COMPONENT_CONSUME_FUNC_STATUS_AGAIN;
  case BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR:
    return BT_GRAPH_SIMPLE_SINK_COMPONENT_CONSUME_FUNC_STATUS_MEMORY_ERROR;
  default:
    return BT_GRAPH_SIMPLE_SINK_COMPONENT_CONSUME_FUNC_STATUS_ERROR;
  }
  for (uint64_t i = 0; i < count; i++) {
    handle_message(data, messages[i]);
    bt_message_put_ref(messages[i]);
  }
  return BT_GRAPH_SIMPLE_SINK_COMPONENT_CONSUME_FUNC_STATUS_OK;
}

/* ---- Finding the traces ------------------------------------------------------------------ */

/* babeltrace2 2.0.4's source.ctf.fs loops for ever on a packetized metadata file cut short
 * (so does the babeltrace2 command), so such a file is refused before babeltrace2 sees it.
 * The check reads only the two sizes of each packet header (CTF 1.8, section 7.1:
 * magic 0x75d11d57, uuid[16], checksum, content_size, packet_size in bits, then 5 bytes);
 * the metadata itself is left to babeltrace2. False when the packets do not tile the file. */
#define METADATA_MAGIC 0x75d11d57u
#define METADATA_HEADER_SIZE 37
static bool metadata_is_whole(const char *path)
{
  FILE *file = fopen(path, "rb");
  if (file == NULL)
    return false;
  bool whole = true;
  unsigned char header[METADATA_HEADER_SIZE];
  for (long offset = 0;;) {
    size_t got = fread(header, 1, sizeof header, file);
    if (got == 0 && feof(file))
      break; /* the packets end where the file ends */
    uint32_t magic, content_bits, packet_bits;
    memcpy(&magic, header, 4);
    if (offset == 0 && magic != METADATA_MAGIC)
      break; /* plain-text metadata: babeltrace2 reads it to its end */
    memcpy(&content_bits, header + 24, 4);
    memcpy(&packet_bits, header + 28, 4);
    if (got != sizeof header || magic != METADATA_MAGIC || packet_bits % 8 != 0 ||
        packet_bits / 8 < METADATA_HEADER_SIZE || content_bits > packet_bits) {
      whole = false;
      break;
    }
    offset += (long)(packet_bits / 8);
    if (fseek(file, offset, SEEK_SET) != 0) {
      whole = false;
      break;
    }
  }
  struct stat st;
  if (whole && fstat(fileno(file), &st) == 0 && ftell(file) > st.st_size)
    whole = false;
  fclose(file);
  return whole;
}

static GPtrArray *found_traces; /* nftw has no user data */
static char *broken_metadata;   /* the first metadata file cut short */

static int note_metadata(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  (void)st;
  if (type != FTW_F || strcmp(path + ftw->base, "metadata") != 0)
    return 0;
  if (!metadata_is_whole(path) && broken_metadata == NULL)
    broken_metadata = g_strdup(path);
  g_ptr_array_add(found_traces, g_path_get_dirname(path));
  return 0;
}

/* The folders under dir that hold a CTF trace, or NULL with message set. */
GPtrArray *pt_find_traces(const char *dir, char *message, size_t message_size)
{
  struct stat st;
  if (stat(dir, &st) != 0) {
    snprintf(message, message_size, "%s: %s", dir, strerror(errno));
    return NULL;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(message, message_size, "%s: not a directory (give the trace's folder)", dir);
    return NULL;
  }
  found_traces = g_ptr_array_new_with_free_func(g_free);
  if (nftw(dir, note_metadata, 16, FTW_PHYS) != 0 || found_traces->len == 0 ||
      broken_metadata != NULL) {
    if (broken_metadata != NULL)
      snprintf(message, message_size, "%s: the trace is truncated (%s is cut short)", dir,
               broken_metadata);
    else
      snprintf(message, message_size, "%s: no LTTng trace here (no CTF metadata file found)",
               dir);
    g_free(broken_metadata);
    broken_metadata = NULL;
    g_ptr_array_free(found_traces, TRUE);
    return NULL;
  }
  g_ptr_array_sort(found_traces, (GCompareFunc)g_strcmp0);
  return found_traces;
}

/* ---- The graph --------------------------------------------------------------------------- */

/* The root cause of the current thread's babeltrace2 error, first line only. */
static void take_error(const char *dir, const char *what, char *message, size_t message_size)
{
  const bt_error *error = bt_current_thread_take_error();
  const char *cause = NULL;
  if (error != NULL && bt_error_get_cause_count(error) > 0)
    cause = bt_error_cause_get_message(
        bt_error_borrow_cause_by_index(error, bt_error_get_cause_count(error) - 1));
  if (cause != NULL)
    snprintf(message, message_size, "%s: %s: %.*s", dir, what, (int)strcspn(cause, "\n"),
             cause);
  else
    snprintf(message, message_size, "%s: %s", dir, what);
  if (error != NULL)
    bt_error_release(error);
}

static const bt_component_class_source *find_source_class(const bt_plugin **plugin)
{
  if (bt_plugin_find("ctf", BT_TRUE, BT_TRUE, BT_TRUE, BT_TRUE, BT_FALSE, plugin) !=
      BT_PLUGIN_FIND_STATUS_OK)
    return NULL;
  return bt_plugin_borrow_source_component_class_by_name_const(*plugin, "fs");
}

static const bt_component_class_filter *find_muxer_class(const bt_plugin **plugin)
{
  if (bt_plugin_find("utils", BT_TRUE, BT_TRUE, BT_TRUE, BT_TRUE, BT_FALSE, plugin) !=
      BT_PLUGIN_FIND_STATUS_OK)
    return NULL;
  return bt_plugin_borrow_filter_component_class_by_name_const(*plugin, "muxer");
}

static bt_value *source_params(GPtrArray *traces)
{
  bt_value *params = bt_value_map_create();
  bt_value *inputs = bt_value_array_create();
  for (guint i = 0; i < traces->len; i++)
    bt_value_array_append_string_element(inputs, traces->pdata[i]);
  bt_value_map_insert_entry(params, "inputs", inputs);
  bt_value_put_ref(inputs);
  return params;
}

/* The output ports of source in this share: index % parts == part. */
static GPtrArray *share_ports(const bt_component_source *source, unsigned part, unsigned parts)
{
  GPtrArray *ports = g_ptr_array_new();
  uint64_t outputs = bt_component_source_get_output_port_count(source);
  for (uint64_t i = part; i < outputs; i += parts)
    g_ptr_array_add(ports, (gpointer)bt_component_source_borrow_output_port_by_index_const(source, i));
  return ports;
}

static bool connect(bt_graph *graph, const bt_port_output *out, const bt_port_input *in)
{
  return bt_graph_connect_ports(graph, out, in, NULL) == BT_GRAPH_CONNECT_PORTS_STATUS_OK;
}

/* The share's streams -> (muxer, one input each) -> our sink. */
static bool connect_share(bt_graph *graph, GPtrArray *ports,
                          const bt_component_class_filter *muxer_class,
                          const bt_component_sink *sink)
{
  const bt_port_input *sink_input = bt_component_sink_borrow_input_port_by_index_const(sink, 0);
  if (ports->len == 1)
    return connect(graph, ports->pdata[0], sink_input);
  const bt_component_filter *muxer = NULL;
  if (bt_graph_add_filter_component(graph, muxer_class, "muxer", NULL, BT_LOGGING_LEVEL_NONE,
                                    &muxer) != BT_GRAPH_ADD_COMPONENT_STATUS_OK)
    return false;
  for (guint i = 0; i < ports->len; i++)
    if (!connect(graph, ports->pdata[i],
                 bt_component_filter_borrow_input_port_by_index_const(muxer, i)))
      return false;
  return connect(graph, bt_component_filter_borrow_output_port_by_index_const(muxer, 0),
                 sink_input);
}

/* Adds the source; with a reader, the rest of the share's graph. */
static int build_graph(bt_graph *graph, GPtrArray *traces, struct reader *reader,
                       unsigned part, unsigned parts, uint64_t *ports_found, const char *dir,
                       char *message, size_t message_size)
{
  const bt_plugin *ctf = NULL, *utils = NULL;
  const bt_component_class_source *source_class = find_source_class(&ctf);
  const bt_component_class_filter *muxer_class = find_muxer_class(&utils);
  int status = -1;
  if (source_class == NULL || muxer_class == NULL) {
    snprintf(message, message_size,
             "%s: babeltrace2's ctf and utils plugins were not found (is babeltrace2 installed?)",
             dir);
    goto out;
  }
  bt_value *params = source_params(traces);
  const bt_component_source *source = NULL;
  const bt_component_sink *sink = NULL;
  bt_graph_add_component_status added = bt_graph_add_source_component(
      graph, source_class, "source", params, BT_LOGGING_LEVEL_NONE, &source);
  bt_value_put_ref(params);
  if (added != BT_GRAPH_ADD_COMPONENT_STATUS_OK) {
    take_error(dir, "not a readable CTF trace", message, message_size);
    goto out;
  }
  *ports_found = bt_component_source_get_output_port_count(source);
  status = 0;
  if (reader == NULL)
    goto out;
  GPtrArray *ports = share_ports(source, part, parts);
  if (ports->len > 0 &&
      (bt_graph_add_simple_sink_component(graph, "palloc-trace", start_sink, consume_messages,
                                          NULL, reader, &sink) != BT_GRAPH_ADD_COMPONENT_STATUS_OK ||
       !connect_share(graph, ports, muxer_class, sink))) {
    take_error(dir, "cannot set up babeltrace2's graph", message, message_size);
    status = -1;
  }
  g_ptr_array_free(ports, TRUE);
out:
  bt_plugin_put_ref(ctf);
  bt_plugin_put_ref(utils);
  return status;
}

static int run_graph(bt_graph *graph, const char *dir, char *message, size_t message_size)
{
  for (;;) {
    switch (bt_graph_run(graph)) {
    case BT_GRAPH_RUN_STATUS_OK:
      return 0;
    case BT_GRAPH_RUN_STATUS_AGAIN:
      g_usleep(1000);
      continue;
    default:
      take_error(dir, "the trace is damaged or truncated", message, message_size);
      return -1;
    }
  }
}

int pt_count_streams(GPtrArray *traces, uint64_t *streams, const char *dir, char *message,
                     size_t message_size)
{
  bt_logging_set_global_level(BT_LOGGING_LEVEL_NONE);
  bt_graph *graph = bt_graph_create(0);
  int status = build_graph(graph, traces, NULL, 0, 1, streams, dir, message, message_size);
  bt_graph_put_ref(graph);
  return status;
}

int pt_read_share(GPtrArray *traces, unsigned part, unsigned parts, pt_event_fn *on_event,
                  void *data, struct pt_read_result *result, const char *dir, char *message,
                  size_t message_size)
{
  bt_logging_set_global_level(BT_LOGGING_LEVEL_NONE);
  struct reader reader = {
    .on_event = on_event, .data = data, .result = result,
    .classes = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free),
  };
  bt_graph *graph = bt_graph_create(0);
  uint64_t streams;
  int status = build_graph(graph, traces, &reader, part, parts, &streams, dir, message,
                           message_size);
  if (status == 0 && part < streams)
    status = run_graph(graph, dir, message, message_size);
  bt_graph_put_ref(graph);
  g_hash_table_destroy(reader.classes);
  return status;
}
