"""gcc vs clang (LLVM ARM backend) for the specializer's generated kernels, measured in the project's simulator.

    python benchmarks/llvm_vs_gcc.py MODEL.tflite [--out benchmarks/results/llvm/<stem>] [--variants gcc,clang]
        [--clang-variant NAME="extra clang flags"] [--swap VARIANT:C_STEM=OBJ]

(issue #6 part 7: does LLVM's ARM backend, the one llvmlite bundles, generate faster code than gcc for our
kernels? The README's "Which compiler backend" paragraph has the answer and the figures.)

For each variant the SAME generated library (specializer.compile output, written once by the project's own
`build_model_elf`, -O3, cortex-m4) is used:
  gcc    the ELF exactly as `build_model_elf(..., opt="-O3")` builds it (what func_profile.py measures)
  clang  lib/*.c compiled by clang --target=thumbv7em-none-eabihf -mcpu=cortex-m4 -O3 (same -D/-I, same
         -ffunction-sections -fdata-sections -fno-common -std=c11, newlib headers via -isystem);
         startup.c (-O2) and bench_harness.c (-O3) compiled by the project's own `compile_object` (gcc);
         linked with the project's exact link command (arm-none-eabi-gcc, cortex_m.ld, nosys.specs, gc-sections).
Every ELF runs once in Simulator(core="cortex-m4") on the model's .ref.npz input, one after the other.
Results (total cycles, per function cycles/instructions, per layer cycles, function sizes, outputs) go to
<out>/<variant>.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from specializer.bench import build_model_elf
from specializer.targets.cortex_m import SUPPORT_DIR
from specializer.targets.cortex_m.cores import get_core
from specializer.targets.cortex_m.toolchain import (COMMON_FLAGS, LINK_FLAGS, compile_object,
                                                    ensure_toolchain)

CORE = get_core("cortex-m4")
OPT = "-O3"
NAME = "net"
DEFINES = [f'SPZ_MODEL_HEADER="{NAME}.h"', f"SPZ_PREFIX={NAME}", f"SPZ_PREFIX_UPPER={NAME.upper()}", "SPZ_PROFILE"]
NEWLIB_INC = "/usr/lib/arm-none-eabi/include"
CLANG = "/usr/bin/clang"
CLANG_FLAGS = ["--target=thumbv7em-none-eabihf", "-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
               "-mthumb", OPT, "-g", *COMMON_FLAGS, "-Wall", "-Wextra", "-isystem", NEWLIB_INC]


def run(cmd, **kw):
    cmd = [str(c) for c in cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode:
        raise RuntimeError(f"failed: {' '.join(cmd)}\n{p.stderr}")
    return p


def clang_cmd(src: Path, lib: Path, extra=()):
    return [CLANG, *CLANG_FLAGS, f"-I{lib}", f"-I{SUPPORT_DIR}", *[f"-D{d}" for d in DEFINES], *extra]


def link(objs, out_dir: Path) -> Path:
    """The project's link command (toolchain.build_elf), verbatim."""
    gcc = ensure_toolchain()
    elf = out_dir / f"{NAME}.elf"
    cmd = [gcc, *CORE.cflags(), *LINK_FLAGS, f"-T{SUPPORT_DIR / 'cortex_m.ld'}",
           f"-Wl,-Map={out_dir / (NAME + '.map')}", *objs, "-lm", "-o", elf]
    run(cmd)
    (out_dir / "link.cmd").write_text(" ".join(map(str, cmd)) + "\n")
    return elf


def gcc_support_objs(lib: Path, obj_dir: Path):
    """startup.c and bench_harness.c exactly as build_elf compiles them."""
    inc = [lib, SUPPORT_DIR]
    st = compile_object(SUPPORT_DIR / "startup.c", CORE, obj_dir, opt="-O2", include_dirs=inc, defines=DEFINES)
    hb = compile_object(SUPPORT_DIR / "bench_harness.c", CORE, obj_dir, opt=OPT, include_dirs=inc,
                        defines=DEFINES)
    return st, hb


def build_clang(lib: Path, out_dir: Path, swap: dict | None = None, extra=()) -> Path:
    """lib/*.c by clang, support files by gcc, gcc link.  `swap` {c_stem: prebuilt object} replaces a lib object."""
    obj_dir = out_dir / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    st, hb = gcc_support_objs(lib, obj_dir)
    lib_objs, log = [], []
    for src in sorted(lib.glob("*.c")):
        if swap and src.stem in swap:
            lib_objs.append(Path(swap[src.stem]))
            continue
        obj = obj_dir / (src.stem + ".o")
        cmd = clang_cmd(src, lib, extra) + ["-c", src, "-o", obj]
        p = run(cmd)
        log.append(" ".join(map(str, cmd)))
        if p.stderr.strip():
            log.append("  stderr: " + p.stderr.strip())
        lib_objs.append(obj)
    (out_dir / "clang.log").write_text("\n".join(log) + "\n")
    # the same object order as build_elf: startup, sorted lib/*.c, bench_harness
    return link([st, *lib_objs, hb], out_dir)


def func_ranges(elf: Path):
    """[(start, end, name)] of STT_FUNC symbols; names with gcc's .constprop/.isra suffixes folded."""
    from elftools.elf.elffile import ELFFile

    by_start = {}
    with open(elf, "rb") as f:
        for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if s["st_info"]["type"] == "STT_FUNC" and s["st_size"]:
                a = s["st_value"] & ~1
                e, names = by_start.get(a, (a + s["st_size"], set()))
                names.add(s.name.split(".")[0])
                by_start[a] = (max(e, a + s["st_size"]), names)
    # identical functions merged by gcc's -fipa-icf are aliases of one body: named "a=b"
    return sorted((a, e, "=".join(sorted(n))) for a, (e, n) in by_start.items())


def simulate(elf: Path, xs):
    from bisect import bisect_right

    from specializer.targets.cortex_m.sim import Simulator

    sim = Simulator(elf, core=CORE.name)
    t0 = time.time()
    r = sim.run([np.ascontiguousarray(x).tobytes() for x in xs])
    wall = time.time() - t0
    ranges = func_ranges(elf)
    starts = [a for a, _, _ in ranges]
    per = defaultdict(lambda: [0, 0])
    for addr, cycles, instrs in sim.executed_blocks():
        i = bisect_right(starts, addr) - 1
        name = ranges[i][2] if i >= 0 and addr < ranges[i][1] else sim.elf.symbol_at(addr).split("+")[0]
        per[name][0] += cycles
        per[name][1] += instrs
    sizes = {}
    for a, e, n in ranges:
        sizes[n] = sizes.get(n, 0) + (e - a)
    return dict(cycles=r.cycles, instructions=r.instructions, outputs=[o.hex() for o in r.outputs],
                per_function={k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1][0])},
                layers=[(str(x.id), x.cycles, x.instructions) for x in r.layers],
                sizes=sizes, text=r.text, rodata=r.rodata, flash=r.flash, stack_peak=r.stack_peak_bytes,
                warnings=list(sim.warnings), wall_seconds=round(wall, 1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--out")
    ap.add_argument("--variants", default="gcc,clang")
    ap.add_argument("--clang-variant", action="append", default=[],
                    help='NAME="extra clang flags": another clang build (e.g. with -mllvm options)')
    ap.add_argument("--swap", action="append", default=[],
                    help="VARIANT:C_STEM=OBJ  build variant like clang but with lib/C_STEM.c replaced by OBJ")
    args = ap.parse_args(argv)
    model = Path(args.model).resolve()
    out = Path(args.out or Path(__file__).resolve().parent / "results" / "llvm" / model.stem)
    out.mkdir(parents=True, exist_ok=True)
    gdir = out / "gcc"
    # (a) the project's build; also writes the generated library that every variant shares
    if not (gdir / "elf" / f"{NAME}.elf").exists():
        if gdir.exists():
            shutil.rmtree(gdir)
        res, gelf = build_model_elf(str(model), CORE.name, gdir, opt=OPT)
        ins = [(io.shape, str(np.dtype(io.dtype))) for io in res.inputs]
        (out / "inputs.json").write_text(json.dumps(ins))
        g = res.graph
        (out / "layers.json").write_text(json.dumps(
            {str(op.index): [op.kind, res.library.layer_functions.get(op.index, "")] for op in g.ops}))
    lib = gdir / "lib"
    z = np.load(model.with_suffix(".ref.npz"))
    ins = json.loads((out / "inputs.json").read_text())
    xs = [np.asarray(z[f"input_{i}"], dtype=dt).reshape(sh) for i, (sh, dt) in enumerate(ins)]
    ref = [z[f"output_{i}"].astype(np.int8).tobytes().hex() for i in range(len(z.files) - len(ins))]
    elfs = {"gcc": gdir / "elf" / f"{NAME}.elf"}
    for v in args.variants.split(","):
        if v == "clang":
            elfs[v] = build_clang(lib, out / "clang")
    wanted = set(args.variants.split(","))
    for cv in args.clang_variant:
        v, flags = cv.split("=", 1)
        elfs[v] = build_clang(lib, out / v, extra=flags.split())
        wanted.add(v)
    for s in args.swap:
        v, rest = s.split(":", 1)
        stem, obj = rest.split("=", 1)
        elfs[v] = build_clang(lib, out / v, swap={stem: obj})
    for v, elf in elfs.items():
        if v not in wanted and not any(s.startswith(v + ":") for s in args.swap):
            continue
        print(f"simulating {model.stem} [{v}] ...", flush=True)
        d = simulate(elf, xs)
        d["elf"] = str(elf)
        d["ref_outputs"] = ref
        d["matches_ref"] = d["outputs"] == ref
        (out / f"{v}.json").write_text(json.dumps(d, indent=1))
        print(f"  {v}: {d['cycles']:,} cycles, {d['instructions']:,} instr, text {d['text']:,} B, "
              f"matches ref: {d['matches_ref']}, warnings: {len(d['warnings'])}, {d['wall_seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
