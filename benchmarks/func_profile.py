"""Cycles per function of one model on a simulated core (a developer's tool for kernel tuning).

    python benchmarks/func_profile.py ../shared/models/mlperf_kws_dscnn.tflite --target cortex-m4 [--generic] [--top 25]

Builds the bench ELF exactly as `specializer bench` does, runs it once in the simulator, and attributes each
executed basic block's cycles (static cost x executions + taken-branch extras; IT/divide extras are left out) to
the function symbol that contains it.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--target", default="cortex-m4")
    ap.add_argument("--opt", default="-O3")
    ap.add_argument("--generic", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--optimize", default="balanced", choices=("balanced", "time", "ram"))
    ap.add_argument("--prefer", default=None, help='variant parameters to prefer, as JSON (e.g. \'{"PN": true}\')')
    args = ap.parse_args(argv)
    from specializer.bench import build_model_elf, load_inputs
    from specializer.targets.cortex_m.sim import Simulator

    with tempfile.TemporaryDirectory() as d:
        res, elf = build_model_elf(args.model, args.target, Path(d), opt=args.opt, generic_only=args.generic,
                                   prefer=json.loads(args.prefer) if args.prefer else None, optimize=args.optimize)
        ref = Path(args.model).with_suffix(".ref.npz")
        xs = load_inputs(str(ref) if ref.exists() else None, res)
        sim = Simulator(elf, core=args.target)
        r = sim.run([np.ascontiguousarray(x).tobytes() for x in xs])
        per = defaultdict(lambda: [0, 0])
        for addr, cycles, instrs in sim.executed_blocks():
            name = sim.elf.symbol_at(addr).split("+")[0].replace(".constprop.0", "")
            per[name][0] += cycles
            per[name][1] += instrs
    total = r.cycles
    print(f"{Path(args.model).stem} on {args.target}: {total:,} cycles "
          f"({sum(c for c, _ in per.values()):,} attributed to functions)")
    for name, (c, n) in sorted(per.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"{c:>12,} {100 * c / total:5.1f}% {n:>11,} instr  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
