#!/usr/bin/env python3
"""gen_traces.py: write the allocation traces that bench/replay replays (malloc-lab style).

Each trace is a text file: '#' comment lines, then one operation per line:
    a ID SIZE   allocate SIZE bytes as block ID
    r ID SIZE   reallocate block ID to SIZE bytes
    f ID        free block ID
IDs are small integers, reused after a free. Every block is freed by the end. The traces are
deterministic (fixed seeds): `python3 gen_traces.py traces/` rewrites the same files.
"""
import math
import random
import sys


class Trace:
    def __init__(self, name, text):
        self.name, self.text, self.ops, self.free_ids, self.next_id = name, " ".join(text.split()), [], [], 0
        self.live = {}

    def alloc(self, size):
        ident = self.free_ids.pop() if self.free_ids else self.next_id
        if ident == self.next_id:
            self.next_id += 1
        self.ops.append(f"a {ident} {size}")
        self.live[ident] = size
        return ident

    def realloc(self, ident, size):
        self.ops.append(f"r {ident} {size}")
        self.live[ident] = size

    def free(self, ident):
        self.ops.append(f"f {ident}")
        del self.live[ident]
        self.free_ids.append(ident)

    def free_all(self, rng=None):
        ids = list(self.live)
        if rng:
            rng.shuffle(ids)
        for ident in ids:
            self.free(ident)

    def write(self, folder):
        with open(f"{folder}/{self.name}.rep", "w") as out:
            out.write(f"# {self.name}: {self.text}\n")
            out.write(f"# ids {self.next_id} ops {len(self.ops)}\n")
            out.write("\n".join(self.ops) + "\n")


def log_uniform(rng, low, high):
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def binary_trees(rng):
    """A long-lived tree plus short-lived trees built and torn down (binary-trees benchmark):
    nodes of a struct with two links and a small key (40-72 bytes)."""
    t = Trace("binary_trees", binary_trees.__doc__)

    def build(depth):
        nodes = [t.alloc(rng.choice((40, 48, 56, 72)))]
        if depth > 0:
            nodes += build(depth - 1) + build(depth - 1)
        return nodes

    long_lived = build(13)
    for round_ in range(24):
        short = build(rng.randint(6, 11))
        for ident in reversed(short):
            t.free(ident)
    for ident in long_lived:
        t.free(ident)
    return t


def growing_arrays(rng):
    """Dynamic arrays grown by doubling with realloc (16 B to 256 KiB) while small strings
    (16-120 B) are allocated around them; some arrays die, some strings die."""
    t = Trace("growing_arrays", growing_arrays.__doc__)
    arrays = {}
    for step in range(9000):
        if rng.random() < 0.35:
            if len(arrays) < 24 and rng.random() < 0.2:
                ident = t.alloc(16)
                arrays[ident] = 16
            elif arrays:
                ident = rng.choice(list(arrays))
                if arrays[ident] < 256 * 1024:
                    arrays[ident] *= 2
                    t.realloc(ident, arrays[ident])
                elif rng.random() < 0.3:
                    t.free(ident)
                    del arrays[ident]
        else:
            t.alloc(rng.randint(16, 120))
            strings = [i for i in t.live if i not in arrays]
            if len(strings) > 3000:
                t.free(rng.choice(strings))
    t.free_all(rng)
    return t


def random_mix(rng):
    """Random sizes, log-uniform from 16 B to 16 KiB, random frees around a live set of
    about 2,500 blocks (a server's request objects)."""
    t = Trace("random_mix", random_mix.__doc__)
    for step in range(30000):
        if len(t.live) < 2500 or rng.random() < 0.5:
            t.alloc(log_uniform(rng, 16, 16384))
        else:
            t.free(rng.choice(list(t.live)))
    t.free_all(rng)
    return t


def small_then_large(rng):
    """Many small blocks (16-128 B), most of them freed at random, then a few large ones
    (64 KiB - 2 MiB) that cannot use the small holes, then everything freed."""
    t = Trace("small_then_large", small_then_large.__doc__)
    small = [t.alloc(rng.randint(16, 128)) for _ in range(20000)]
    rng.shuffle(small)
    for ident in small[: len(small) * 9 // 10]:
        t.free(ident)
    for _ in range(40):
        t.alloc(log_uniform(rng, 64 * 1024, 2 * 1024 * 1024))
    t.free_all(rng)
    return t


def string_builders(rng):
    """String buffers grown by small steps with realloc (malloc-lab's realloc traces),
    interleaved with small allocations that stay live a while."""
    t = Trace("string_builders", string_builders.__doc__)
    builders = {}
    for step in range(24000):
        r = rng.random()
        if r < 0.05 and len(builders) < 40:
            ident = t.alloc(rng.randint(16, 64))
            builders[ident] = t.live[ident]
        elif r < 0.6 and builders:
            ident = rng.choice(list(builders))
            builders[ident] += rng.randint(8, 200)
            t.realloc(ident, builders[ident])
            if builders[ident] > 64 * 1024:
                t.free(ident)
                del builders[ident]
        else:
            t.alloc(rng.randint(24, 200))
            others = [i for i in t.live if i not in builders]
            if len(others) > 1500:
                t.free(rng.choice(others))
    t.free_all(rng)
    return t


def phases(rng):
    """A program in phases: many 64-256 B objects, all freed in random order; then 1-4 KiB
    objects; then a mix. Memory freed in one phase must serve the next."""
    t = Trace("phases", phases.__doc__)
    for low, high, count in ((64, 256, 12000), (1024, 4096, 2500), (16, 8192, 5000)):
        for _ in range(count):
            t.alloc(rng.randint(low, high))
            if rng.random() < 0.1:
                t.free(rng.choice(list(t.live)))
        t.free_all(rng)
    return t


def fifo_queue(rng):
    """Messages of 100-2,000 B through a queue of about 1,000: freed in arrival order, so
    free space moves along the heap (coalescing and reuse of old holes)."""
    t = Trace("fifo_queue", fifo_queue.__doc__)
    queue = []
    for step in range(30000):
        queue.append(t.alloc(rng.randint(100, 2000)))
        if len(queue) > rng.randint(800, 1200):
            t.free(queue.pop(0))
    for ident in queue:
        t.free(ident)
    return t


def fragmenting(rng):
    """Small and medium blocks alternate (64 and 448 B); the medium ones are freed and
    slightly bigger ones (512 B) asked for: malloc-lab's binary trace, the worst case for
    reuse of holes."""
    t = Trace("fragmenting", fragmenting.__doc__)
    pairs = [(t.alloc(64), t.alloc(448)) for _ in range(4000)]
    for _, medium in pairs:
        t.free(medium)
    for _ in range(4000):
        t.alloc(512)
    t.free_all(rng)
    return t


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "traces"
    generators = (binary_trees, growing_arrays, random_mix, small_then_large,
                  string_builders, phases, fifo_queue, fragmenting)
    for seed, generate in enumerate(generators):
        generate(random.Random(1000 + seed)).write(folder)


if __name__ == "__main__":
    main()
