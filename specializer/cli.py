"""Command line: `specializer compile | inspect | bench`.

How it works
1. argparse subcommands call the Python API (`specializer.api`) and the Cortex-M bench driver
   (`specializer.bench`).
2. A `SpecializerError` (bad model, bad name, unknown target, unwritable directory, toolchain failure...) prints
   one line `specializer: error: ...` on stderr and exits with status 2; no traceback for user mistakes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .errors import SpecializerError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="specializer",
                                description="Compile int8 TFLite models into static C libraries for Cortex-M.")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("compile", help="generate <name>.h, <name>.c, <name>_weights.c and runtime headers")
    c.add_argument("model", help=".tflite file")
    c.add_argument("--name", default="net", help="C prefix of the library (a C identifier; default: net)")
    c.add_argument("-o", "--out", default="out", help="output directory (default: out/)")
    c.add_argument("--target", default=None,
                   help="core to tune for: cortex-m0plus, cortex-m3, cortex-m4, cortex-m7, cortex-m33, cortex-m55 "
                        "(default: portable C)")
    c.add_argument("--generic", action="store_true", help="use only the generic (reference) kernels")
    c.add_argument("--flash-budget", type=_budget, default="default", metavar="BYTES",
                   help="flash the specialized layers' weight streams may take (e.g. 200000 or 180K); 'unlimited' "
                        "= fastest variant everywhere; default: the int8 weight streams plus max(32K, 8%%)")
    c.add_argument("--optimize", choices=("balanced", "time", "ram"), default="balanced",
                   help="time: no row bands; balanced (default): row bands for layer pairs and residual blocks "
                        "that cut the arena >= 10%%, each in its fastest such form; ram: the smallest band forms, "
                        "and variants may give up more cycles for RAM")
    c.add_argument("--no-prune", dest="prune", action="store_false",
                   help="keep channels proven constant (passes/prune_channels removes them by default)")
    c.add_argument("--tune", action="store_true",
                   help="time every layer's candidate variants in the simulator (cached) and choose by the measured "
                        "cycles instead of estimates; needs --target")
    c.add_argument("--tune-opt", default="-O3", choices=["-O2", "-O3", "-Os"],
                   help="the optimisation level the tuning builds use (default -O3)")
    c.add_argument("--dump-after", metavar="PASS", help="print the IR after the named pass")

    i = sub.add_parser("inspect", help="ops, shapes, quantization, MACs per layer, memory plan")
    i.add_argument("model")
    i.add_argument("--target", default=None)
    i.add_argument("--dump-after", metavar="PASS", help="also print the IR after the named pass")

    b = sub.add_parser("bench", help="cross-compile, run in the Cortex-M simulator, report cycles/RAM/flash per layer")
    b.add_argument("model", nargs="?", help=".tflite file")
    b.add_argument("--elf", action="append", default=[], help="also measure an ELF that follows the bench contract")
    b.add_argument("--target", default="cortex-m4")
    b.add_argument("--opt", default="-O2", choices=["-O2", "-O3", "-Os"], help="cross-compiler optimisation level")
    b.add_argument("--generic", action="store_true", help="use only the generic (reference) kernels")
    b.add_argument("--vs-generic", action="store_true",
                   help="also build the generic library (the ablation) and print both side by side, per layer")
    b.add_argument("--flash-budget", type=_budget, default="default", metavar="BYTES",
                   help="as for compile")
    b.add_argument("--optimize", choices=("balanced", "time", "ram"), default="balanced",
                   help="row bands: time (none), balanced (pairs and residual blocks, default), ram (more RAM-first)")
    b.add_argument("--no-prune", dest="prune", action="store_false",
                   help="keep channels proven constant (passes/prune_channels removes them by default)")
    b.add_argument("--tune", action="store_true",
                   help="choose the variants by their cycles measured in the simulator at --opt (cached)")
    b.add_argument("--input", help="input .npz (input_0, ...) or raw .bin; default: seeded random int8")
    b.add_argument("--json", dest="json_out", help="write the full report as JSON")
    b.add_argument("--plot", help="write a per-layer PNG chart")
    b.add_argument("--build-dir", help="keep the build here (default: a temporary directory)")
    b.add_argument("--check-stores", action="store_true",
                   help="also run once with every arena store checked against the memory plan")
    b.add_argument("--against", choices=["cmsis-nn"],
                   help="also build the model as direct CMSIS-NN calls and compare per layer (cycles, outputs)")
    b.add_argument("--cmsis-nn", dest="cmsis_nn", metavar="PATH",
                   help="CMSIS-NN checkout for --against (default: $CMSIS_NN_PATH)")
    return p


def _budget(text: str):
    t = text.strip().lower()
    if t == "default":
        return "default"
    if t in ("unlimited", "none", "max"):
        return None
    mult = 1024 if t.endswith("k") else (1024 * 1024 if t.endswith("m") else 1)
    try:
        v = int(float(t.rstrip("km")) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r} (e.g. 200000, 180K, unlimited)") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"a flash budget cannot be negative: {text!r}")
    return v


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "compile":
            return _compile(args)
        if args.cmd == "inspect":
            from .api import inspect_model

            sys.stdout.write(inspect_model(args.model, args.target, dump_after=args.dump_after))
            return 0
        if args.cmd == "bench":
            from .bench import bench_main

            return bench_main(args)
    except SpecializerError as e:
        print(f"specializer: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("specializer: interrupted", file=sys.stderr)
        return 130
    return 1


def _compile(args) -> int:
    from .api import compile as compile_model

    report: dict = {}
    res = compile_model(args.model, name=args.name, out_dir=args.out, target=args.target,
                        generic_only=args.generic, dump_after=args.dump_after, flash_budget=args.flash_budget,
                        dump_sink=lambda s: sys.stdout.write(s), prune=args.prune,
                        optimize=args.optimize, tune=args.tune, tune_opt=args.tune_opt, tune_report=report)
    lib = res.library
    if report:
        how = "read from the cache" if report.get("hit") else f"measured in {report['builds']} simulator builds"
        print(f"  tuned: {report['candidates']} variants of {report['layers']} layers {how} ({report['cache']})")
    print(f"{args.model} -> {Path(args.out)}/: " + ", ".join(sorted(lib.files)))
    print(f"  {lib.layers} layers, {lib.functions} kernel functions ({lib.shared} layers share one), "
          f"arena {res.arena_size} bytes ({res.name.upper()}_ARENA_SIZE), target {getattr(res.core, 'name', 'portable C')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
