"""Command line for the simulator.

How it works:
1. ``run ELF [--input FILE ...] [--core m4] [--json] [--output FILE] [--max-instructions N]`` loads the ELF,
   runs one inference and prints either a JSON report (``SimResult.to_dict``) or a short text summary.
2. ``--input`` may be repeated for multi-input models; ``--output`` writes output 0 (repeat for more outputs).
Exit status 0 on success, 2 on a simulation error (message on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys

from .simulator import SimError, Simulator


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m specializer.targets.cortex_m.sim")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one inference of a benchmark ELF (DESIGN.md section 3)")
    r.add_argument("elf")
    r.add_argument("--input", action="append", default=[], help="raw bytes of input i (repeatable)")
    r.add_argument("--output", action="append", default=[], help="write output i here (repeatable)")
    r.add_argument("--core", default="cortex-m4")
    r.add_argument("--json", action="store_true")
    r.add_argument("--max-instructions", type=int, default=2_000_000_000)
    a = ap.parse_args(argv)
    try:
        inputs = [open(p, "rb").read() for p in a.input]
        res = Simulator(a.elf, core=a.core).run(inputs, max_instructions=a.max_instructions)
    except (SimError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path, data in zip(a.output, res.outputs):
        with open(path, "wb") as f:
            f.write(data)
    if a.json:
        print(json.dumps(res.to_dict(), indent=1, default=str))
    else:
        print(f"{res.core}: {res.cycles} cycles, {res.instructions} instructions (CPI {res.cpi:.3f}), "
              f"stack {res.stack_peak_bytes} B, static RAM {res.static_ram} B, flash {res.flash} B, "
              f"{res.sim_instructions_per_second / 1e6:.1f} M instr/s")
        for w in res.warnings:
            print("warning:", w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
