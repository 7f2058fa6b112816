#!/usr/bin/python3
"""check-trace.py: compare an LTTng trace of palloc:* events with trace-known's logs.

    check-trace.py TRACE_DIR LOG...

Each LOG (written by trace-known) lists, per process and thread, the calls made from the
program's own code in order. The trace must hold exactly those calls, once each, in that order
per thread (vpid, vtid), with the same pointers and sizes; events whose caller lies outside the
program's code (libc's own allocations) are ignored. A LOG with a "summary count=N" line asks
only that N events from that process be there. Prints findings as TAP comments ('# ...') and
exits 0 when all match. Needs Debian's python3 (python3-bt2).
"""
import collections
import sys

import bt2

INT_FIELDS = ("size", "nmemb", "alignment", "result")
PTR_FIELDS = ("ptr", "in_ptr")


def read_logs(paths):
    expected = collections.defaultdict(list)  # (pid, tid) -> [(event, {field: int})]
    counts = {}                               # pid -> events expected (summary mode)
    text = None
    for path in paths:
        with open(path) as log:
            for line in log:
                words = line.split()
                if words[0] == "text":
                    text = (int(words[1], 16), int(words[2], 16))
                    continue
                pid, tid, event = int(words[0]), int(words[1]), words[2]
                fields = dict(w.split("=", 1) for w in words[3:])
                if event == "summary":
                    counts[pid] = int(fields["count"])
                    continue
                expected[(pid, tid)].append(
                    (event, {k: int(v, 0) for k, v in fields.items()}))
    return expected, counts, text


def read_trace(trace_dir, pids, text):
    seen = collections.defaultdict(list)
    discarded = 0
    for msg in bt2.TraceCollectionMessageIterator(trace_dir):
        if isinstance(msg, bt2._DiscardedEventsMessageConst):
            discarded += msg.count or 1
            continue
        if type(msg) is not bt2._EventMessageConst:
            continue
        event = msg.event
        if not event.name.startswith("palloc:"):
            continue
        ctx = event.common_context_field
        pid = int(ctx["vpid"])
        if pid not in pids or "usable" not in event.payload_field:
            continue
        payload = event.payload_field
        caller = int(payload["caller"])
        if not text[0] <= caller < text[1]:
            continue
        if int(ctx["ip"]) != caller:
            print("# %s: ip context %#x is not the caller %#x" % (event.name, int(ctx["ip"]), caller))
            seen[(pid, int(ctx["vtid"]))].append(("bad-ip", {}))
        fields = {k: int(payload[k]) for k in INT_FIELDS + PTR_FIELDS + ("usable",) if k in payload}
        seen[(pid, int(ctx["vtid"]))].append((event.name[len("palloc:"):], fields))
    return seen, discarded


def sane_usable(event, fields):
    """usable is the block's size for a returned or freed block, 0 without one."""
    if fields.get("ptr", 0) == 0:
        return fields["usable"] == 0
    if event.startswith("free"):
        return fields["usable"] > 0
    return fields["usable"] >= fields.get("size", 0) * fields.get("nmemb", 1)


def compare(expected, seen):
    problems = 0
    for key, calls in sorted(expected.items()):
        got = seen.get(key, [])
        if len(got) != len(calls):
            print("# pid %d tid %d: %d calls made, %d traced" % (key[0], key[1], len(calls), len(got)))
            problems += 1
        for i, ((want_event, want), (got_event, fields)) in enumerate(zip(calls, got)):
            wrong = [k for k, v in want.items() if fields.get(k) != v]
            if want_event != got_event or wrong or not sane_usable(got_event, fields):
                print("# pid %d tid %d call %d: made %s %s, traced %s %s" %
                      (key[0], key[1], i, want_event, want, got_event, fields))
                problems += 1
                break
    for key in seen:
        if key not in expected:
            print("# pid %d tid %d: %d traced calls from no logged thread" % (key[0], key[1], len(seen[key])))
            problems += 1
    return problems


def main():
    trace_dir, logs = sys.argv[1], sys.argv[2:]
    expected, counts, text = read_logs(logs)
    pids = {pid for pid, _ in expected} | set(counts)
    seen, discarded = read_trace(trace_dir, pids, text)
    if discarded:
        print("# LTTng discarded %d events" % discarded)
    problems = 1 if discarded else 0
    if counts:
        for pid, count in counts.items():
            got = sum(len(v) for (p, _), v in seen.items() if p == pid)
            print("# pid %d: %d events expected, %d traced, %d discarded" % (pid, count, got, discarded))
            problems += got != count
    else:
        problems += compare(expected, seen)
        print("# %d calls in %d threads compared" % (sum(map(len, expected.values())), len(expected)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
