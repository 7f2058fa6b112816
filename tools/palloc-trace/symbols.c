/* symbols.c: address resolution with libdwfl, one Dwfl session per process.
 *
 * Each object of the process's map (struct pt_module) is reported at its base; the lookup
 * uses addr - 1, since a return address lies after the call and may already belong to the
 * next line or, after a call that does not return, to the next function. Results are cached
 * per process: reports resolve each caller once.
 *
 * Why not babeltrace2's filter.lttng-utils.debug-info: it resolves every event's ip as it
 * passes (a cost per event, where the reports need a few hundred callers), and it looks up
 * the return address itself, so its file:line is the line after the call or, here, often
 * empty (babeltrace2 2.0.4 showed `leak_a+0xe` with no source for a call that addr2line and
 * libdw place on its line).
 */
#include "symbols.h"

#include <elfutils/libdwfl.h>
#include <glib.h>
#include <string.h>

struct symbols {
  Dwfl *dwfl;          /* NULL until first used */
  GHashTable *cache;   /* addr -> struct pt_symbol (strings owned by `strings`) */
  GStringChunk *strings;
};

static const Dwfl_Callbacks offline_callbacks = {
  .find_elf = dwfl_build_id_find_elf,
  .find_debuginfo = dwfl_standard_find_debuginfo,
  .section_address = dwfl_offline_section_address,
};

static const struct pt_module *module_covering(const struct pt_process *process, uint64_t addr)
{
  for (guint i = 0; i < process->modules->len; i++) {
    const struct pt_module *module = &g_array_index(process->modules, struct pt_module, i);
    if (addr >= module->base && addr - module->base < module->size)
      return module;
  }
  return NULL;
}

/* The process whose map covers addr: this one, else any other (a forked child). */
static struct pt_process *process_covering(const struct pt_model *model,
                                           struct pt_process *process, uint64_t addr)
{
  if (module_covering(process, addr) != NULL)
    return process;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, model->processes);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    if (module_covering(value, addr) != NULL)
      return value;
  return process;
}

static struct symbols *symbols_of(struct pt_process *process)
{
  struct symbols *symbols = process->symbols;
  if (symbols != NULL)
    return symbols;
  symbols = g_new0(struct symbols, 1);
  symbols->cache = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  symbols->strings = g_string_chunk_new(4096);
  symbols->dwfl = dwfl_begin(&offline_callbacks);
  if (symbols->dwfl != NULL) {
    dwfl_report_begin(symbols->dwfl);
    for (guint i = 0; i < process->modules->len; i++) {
      const struct pt_module *module = &g_array_index(process->modules, struct pt_module, i);
      dwfl_report_elf(symbols->dwfl, module->path, module->path, -1, module->base, true);
    }
    dwfl_report_end(symbols->dwfl, NULL, NULL);
  }
  process->symbols = symbols;
  return symbols;
}

static const char *keep(struct symbols *symbols, const char *text)
{
  return text == NULL ? NULL : g_string_chunk_insert_const(symbols->strings, text);
}

static void look_up(struct symbols *symbols, const struct pt_module *module, uint64_t addr,
                    struct pt_symbol *symbol)
{
  if (module != NULL) {
    const char *slash = strrchr(module->path, '/');
    symbol->object = keep(symbols, slash != NULL ? slash + 1 : module->path);
    symbol->offset = addr - module->base;
  }
  Dwfl_Module *dwfl_module = symbols->dwfl ? dwfl_addrmodule(symbols->dwfl, addr - 1) : NULL;
  if (dwfl_module == NULL)
    return;
  GElf_Off offset;
  GElf_Sym sym;
  symbol->function =
      keep(symbols, dwfl_module_addrinfo(dwfl_module, addr - 1, &offset, &sym, NULL, NULL, NULL));
  Dwfl_Line *line = dwfl_module_getsrc(dwfl_module, addr - 1);
  if (line != NULL) {
    int lineno = 0;
    const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
    symbol->file = keep(symbols, file);
    symbol->line = lineno;
  }
}

const struct pt_symbol *pt_symbols_resolve(const struct pt_model *model,
                                           struct pt_process *process, uint64_t addr)
{
  struct pt_process *owner = process_covering(model, process, addr);
  struct symbols *symbols = symbols_of(owner);
  struct pt_symbol *symbol = g_hash_table_lookup(symbols->cache, (gpointer)(uintptr_t)addr);
  if (symbol != NULL)
    return symbol;
  symbol = g_new0(struct pt_symbol, 1);
  if (addr != 0)
    look_up(symbols, module_covering(owner, addr), addr, symbol);
  g_hash_table_insert(symbols->cache, (gpointer)(uintptr_t)addr, symbol);
  return symbol;
}

void pt_symbols_free(struct pt_model *model)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, model->processes);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    struct pt_process *process = value;
    struct symbols *symbols = process->symbols;
    if (symbols == NULL)
      continue;
    if (symbols->dwfl != NULL)
      dwfl_end(symbols->dwfl);
    g_hash_table_destroy(symbols->cache);
    g_string_chunk_free(symbols->strings);
    g_free(symbols);
    process->symbols = NULL;
  }
}
