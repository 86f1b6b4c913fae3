"""Simulator speed: simulated instructions per second on a compute-heavy loop ELF.

How it works:
1. Writes a small benchmark-contract C program (an int8 dot-product/requantize loop with SMLAD-friendly code
   plus a short inner branchy loop, ~tens of millions of instructions per bench_invoke) to a temp dir.
2. Builds it with the project's toolchain driver for the chosen core (-O2).
3. Runs it through ``Simulator`` ``--repeat`` times and prints instructions, cycles, emulation seconds and the
   best simulated-instructions-per-second figure (emulation of bench_invoke only; ELF load excluded).
Usage: python benchmarks/sim_speed.py [--core m4] [--iters 150] [--repeat 3]   (150 iterations = ~25 M instructions)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from specializer.targets.cortex_m.sim import Simulator
from specializer.targets.cortex_m.toolchain import build_elf

SRC = r"""
#include <stdint.h>
#ifndef ITERS
#define ITERS 150
#endif
static int8_t in_buf[1024];
static int8_t w_buf[1024];
static int8_t out_buf[64];
int8_t *bench_input_ptr; uint32_t bench_input_len;
int8_t *bench_output_ptr; uint32_t bench_output_len;
void bench_setup(void);
void bench_invoke(void);
void bench_setup(void)
{
    for (int i = 0; i < 1024; i++) { w_buf[i] = (int8_t)(i * 37 + 11); }
    bench_input_ptr = in_buf; bench_input_len = sizeof in_buf;
    bench_output_ptr = out_buf; bench_output_len = sizeof out_buf;
}
__attribute__((noinline)) static int32_t dot(const int8_t *a, const int8_t *b, int n)
{
    int32_t acc = 0;
    for (int i = 0; i < n; i++) { acc += (int32_t)a[i] * b[i]; }
    return acc;
}
void bench_invoke(void)
{
    for (int it = 0; it < ITERS; it++) {
        for (int o = 0; o < 64; o++) {
            int32_t acc = dot(in_buf + (o & 7) * 64, w_buf + o * 16, 512) + it;
            acc = (acc * 1337) >> 16;
            out_buf[o] = (int8_t)(acc > 127 ? 127 : acc < -128 ? -128 : acc);
        }
    }
}
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", default="m4")
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "speed.c"
        src.write_text(SRC)
        elf = build_elf([src], [], a.core, Path(d), defines=[f"ITERS={a.iters}"], name="speed")
        best = None
        t0 = time.perf_counter()
        for _ in range(a.repeat):
            r = Simulator(elf, core=a.core).run(bytes(1024))
            if best is None or r.sim_instructions_per_second > best.sim_instructions_per_second:
                best = r
        wall = (time.perf_counter() - t0) / a.repeat
    print(f"core={best.core} instructions={best.instructions} cycles={best.cycles} cpi={best.cpi:.3f}")
    print(f"emulation_seconds={best.emulation_seconds:.3f} wall_seconds_per_run={wall:.3f}")
    print(f"sim_instructions_per_second={best.sim_instructions_per_second / 1e6:.2f} M")
    return best


if __name__ == "__main__":
    main()
