#!/bin/sh
# symbols.sh LIB: the dynamic symbols LIB.so defines, and the global names of LIB.a, are
# exactly the API (nothing internal leaks), and LIB.so's thread-locals use the initial-exec
# model only (STATIC_TLS, no dynamic TLS relocations), as a library loaded before libc's own
# malloc users must.
set -u
lib=$1
so=$top_builddir/.libs/$lib.so
n=0
failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }

expected="aligned_alloc calloc free free_aligned_sized free_sized mallinfo mallinfo2 malloc
malloc_info malloc_stats malloc_trim malloc_usable_size mallopt memalign palloc_backend_name palloc_check_heap
palloc_function_name palloc_stats_get palloc_stats_print palloc_trace_register posix_memalign pvalloc realloc
reallocarray valloc
__libc_malloc __libc_calloc __libc_realloc __libc_free __libc_memalign __libc_valloc
__libc_pvalloc cfree"
# ELF and toolchain noise a shared library may define.
noise='^(_init|_fini|_edata|_end|__bss_start)$'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$expected" | tr ' ' '\n' | sed '/^$/d' | sort > "$tmp/expected"
if ! nm -D --defined-only "$so" > "$tmp/nm"; then
  echo "Bail out! nm -D failed on $so"
  exit 1
fi
awk '{print $NF}' "$tmp/nm" | sed 's/@.*//' | grep -Ev "$noise" | sort -u > "$tmp/actual"
extra=$(comm -13 "$tmp/expected" "$tmp/actual" | tr '\n' ' ')
missing=$(comm -23 "$tmp/expected" "$tmp/actual" | tr '\n' ' ')
ok "$([ -z "$extra" ] && echo 0 || echo 1)" "$lib.so exports nothing beyond the API${extra:+ (extra: $extra)}"
ok "$([ -z "$missing" ] && echo 0 || echo 1)" "$lib.so exports every API name${missing:+ (missing: $missing)}"
# The static library: the same names and no others (Makefile.am makes the internal ones local).
archive=$top_builddir/.libs/$lib.a
if ! nm -g --defined-only "$archive" > "$tmp/nm-archive"; then
  echo "Bail out! nm failed on $archive"
  exit 1
fi
awk 'NF == 3 {print $3}' "$tmp/nm-archive" | sort -u > "$tmp/archive"
extra=$(comm -13 "$tmp/expected" "$tmp/archive" | tr '\n' ' ')
missing=$(comm -23 "$tmp/expected" "$tmp/archive" | tr '\n' ' ')
ok "$([ -z "$extra" ] && echo 0 || echo 1)" "$lib.a defines no global name beyond the API${extra:+ (extra: $extra)}"
ok "$([ -z "$missing" ] && echo 0 || echo 1)" "$lib.a defines every API name${missing:+ (missing: $missing)}"
# The standard names must stay unversioned, or LD_PRELOAD interposition stops working.
versioned=$(grep -E ' (malloc|free|calloc|realloc)@' "$tmp/nm" | tr '\n' ' ')
ok "$([ -z "$versioned" ] && echo 0 || echo 1)" "malloc and friends carry no symbol version${versioned:+ ($versioned)}"
for fn in malloc free calloc realloc; do
  type=$(awk -v f="$fn" '$NF == f {print $(NF-1)}' "$tmp/nm")
  ok "$([ "$type" = T ] && echo 0 || echo 1)" "$fn is a global function (type ${type:-none})"
done

readelf -W -d "$so" > "$tmp/dynamic" || { echo "Bail out! readelf -d failed"; exit 1; }
readelf -W -r "$so" > "$tmp/relocs" || { echo "Bail out! readelf -r failed"; exit 1; }
readelf -W -l "$so" > "$tmp/segments" || { echo "Bail out! readelf -l failed"; exit 1; }
grep -q ' TLS ' "$tmp/segments"
ok $? "$lib.so has a TLS segment (its thread caches)"
grep -E '\(FLAGS\)' "$tmp/dynamic" | grep -q STATIC_TLS
ok $? "$lib.so has the STATIC_TLS flag (initial-exec TLS)"
dyn_tls=$(grep -E 'R_X86_64_(DTPMOD64|DTPOFF64|TLSGD|TLSLD)' "$tmp/relocs" | head -3 | tr '\n' ';')
ok "$([ -z "$dyn_tls" ] && echo 0 || echo 1)" "no dynamic-TLS relocations${dyn_tls:+ ($dyn_tls)}"
grep -q '__tls_get_addr' "$tmp/relocs"
ok "$([ $? -ne 0 ] && echo 0 || echo 1)" "no calls to __tls_get_addr"
grep -E '\(FLAGS_1\)|\(FLAGS\)' "$tmp/dynamic" | grep -q 'NOW\|BIND_NOW'
ok $? "$lib.so is linked with -z now"
echo "1..$n"
exit $failed
