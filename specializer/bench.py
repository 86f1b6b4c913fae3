"""`specializer bench`: cross-compile a model for a Cortex-M core, run it in the simulator, report per layer.

How it works
1. `build_model_elf` compiles the model for the core (kernel registry tuned to its features), writes the C
   library, and links it with `bench_harness.c` + startup into an ELF that follows DESIGN.md §3, built with
   -DSPZ_PROFILE so every layer is bracketed by `spz_profile_mark` calls.
2. `bench_model` runs the ELF once in the simulator on an input (seeded random by default), checks the output
   against the tflite-micro interpreter when it is installed, and returns a `BenchReport`: cycles, instructions,
   MAC/cycle, RAM (arena + stack peak + other static data), flash (text + rodata + data), and one row per layer
   (cycles, MACs, MAC/cycle, share). The marker calls cost a few cycles per layer; they are included.
3. `bench_elf` measures any ELF that follows the contract (e.g. a TFLite Micro application), side by side.
4. `bench_main` is the CLI: a table on stdout, `--json` and `--plot` files.
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .errors import SpecializerError, TargetError
from .targets.cortex_m import SUPPORT_DIR



@dataclass
class LayerRow:
    index: Any
    op: str
    kernel: str
    shape: str
    macs: int
    cycles: int
    instructions: int
    variant: str = ""  # the emitted C function (its name spells the specialization), without the library prefix
    ceiling: Optional[float] = None  # practical MAC/cycle ceiling of the layer's type (`practical_ceiling`)
    code_bytes: int = 0  # flash of the layer's kernel functions (shared functions count for every user)

    @property
    def mac_per_cycle(self) -> float:
        return self.macs / self.cycles if self.cycles and self.macs else 0.0


@dataclass
class BenchReport:
    label: str
    core: str
    cycles: int
    instructions: int
    macs: int
    arena: Optional[int]
    stack_peak: int
    static_ram: int
    ram_total: int
    flash: int
    text: int
    rodata: int
    data: int
    bss: int
    layers: list = field(default_factory=list)
    bitexact: Optional[bool] = None
    output_hex: list = field(default_factory=list)
    sim_instructions_per_second: float = 0.0
    opt: str = ""
    warnings: list = field(default_factory=list)
    functions: int = 0  # kernel functions emitted (layers with equal template arguments share one)
    kernel_layers: int = 0  # layers with code

    @property
    def mac_per_cycle(self) -> float:
        return self.macs / self.cycles if self.cycles and self.macs else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mac_per_cycle"] = round(self.mac_per_cycle, 4)
        for row, obj in zip(d["layers"], self.layers):
            row["mac_per_cycle"] = round(obj.mac_per_cycle, 4)
        return d


def practical_ceiling(g, op) -> Optional[float]:
    """MAC/cycle a hand-specialized kernel can reach on the Cortex-M4 cost model for this layer type
    (../shared/PERF_NOTES.md, KERNEL_CEILINGS.md): the inner loop costs >= 1 cycle per MAC (one SMLAD per
    cycle at best, operand loads included) and each output ~11 cycles (requantize, parameters, store), so
    convolution K / (K + 11) for reduction depth K; depthwise 3x3 ~0.55: T / (1.17 T + 5) for T taps; fully
    connected with int8 weights streamed once (unpacked in registers) K / (1.25 K + 11)."""
    from .api import op_macs

    if not op_macs(g, op):
        return None
    if op.kind == "BANDED_FC":  # the convolution and the fully connected layer at their own ceilings
        a = op.attrs
        first = next(o for o in a.sub.ops if o.index == a.steps[0].p_op)
        return a.macs / (a.p_macs / practical_ceiling(a.sub, first) + a.c_macs * (1.25 * a.depth + 11) / a.depth)
    if op.kind == "BANDED_PAIR":  # both layers at their own ceilings
        a = op.attrs
        first = ({s.p_op for s in a.steps if s.p_op >= 0}, {s.c_op for s in a.steps},
                 {s.s_op for s in a.steps if s.s_op >= 0})
        subs = [next(o for o in a.sub.ops if o.index == min(ids)) if ids else None for ids in first]
        cyc = sum(n / practical_ceiling(a.sub, o) for n, o in zip((a.p_macs, a.c_macs, a.s_macs), subs) if n)
        return a.macs / cyc if cyc else None
    w = g.t(op.inputs[1])
    if op.kind == "CONV_2D" or (op.kind == "DEPTHWISE_CONV_2D" and g.t(op.inputs[0]).shape[3] == 1):
        k = w.shape[1] * w.shape[2] * (w.shape[3] if op.kind == "CONV_2D" else 1)
        return k / (k + 11)
    if op.kind == "DEPTHWISE_CONV_2D":
        t = w.shape[1] * w.shape[2]
        return t / (1.17 * t + 5)
    if op.kind == "FULLY_CONNECTED":
        k = w.shape[1]
        return k / (1.25 * k + 11)
    return None


def function_sizes(elf: Path) -> dict:
    """Bytes of every function symbol of an ELF (gcc's .constprop/.isra clones folded into their origin)."""
    from elftools.elf.elffile import ELFFile

    sizes: dict = {}
    with open(elf, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        for sym in (tab.iter_symbols() if tab is not None else ()):
            if sym["st_info"]["type"] == "STT_FUNC" and sym["st_size"]:
                base = sym.name.split(".")[0]
                sizes[base] = sizes.get(base, 0) + sym["st_size"]
    return sizes


def _code_bytes(sizes: dict, fn: str) -> int:
    """The function and its helpers (<fn>_gemm2, <fn>_c4, <fn>_cvt, ...)."""
    return sum(v for k, v in sizes.items() if k == fn or k.startswith(fn + "_"))


SIMULATED = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33")


def check_simulated(core) -> None:
    """One-line error for a core the simulator does not model (Cortex-M55: MVE/Helium is not simulated)."""
    if core.name not in SIMULATED:
        raise TargetError(f"bench cannot simulate {core.name} (its MVE/Helium instructions are not modelled: it would "
                          f"fault before the first layer); "
                          f"`specializer compile --target {core.name}` works; bench runs on {', '.join(SIMULATED)}")


def _running_layer(sim, g) -> str:
    """' in layer #k KIND (kernel)' for the layer whose profile mark came last before a fault."""
    marks = getattr(sim, "_marks", None) or []
    if not marks:
        return " before the first layer"
    mark = marks[-1][0]
    if mark == 0xFFFFFFFF:
        return " after the last layer"
    for op in g.ops:
        if op.index == mark:
            return f" in layer #{op.index} {op.kind} ({op.kernel.entry if op.kernel else 'alias'})"
    return f" in layer #{mark}"


def _core(target):
    from .targets.cortex_m.cores import get_core

    try:
        return get_core(target)
    except ValueError as e:
        raise TargetError(str(e)) from None


def build_model_elf(model, core, build_dir: Path, opt: str = "-O2", generic_only: bool = False,
                    name: str = "net", profile: bool = True, flash_budget="default", prefer=None,
                    share_all: bool = False, prune: bool = True, optimize: str = "balanced", tune: bool = False):
    """Compile `model` for `core` and link the benchmark ELF (`tune`: variants timed in the simulator at `opt`).
    Returns (CompileResult, elf path)."""
    import specializer

    from .targets.cortex_m.toolchain import ToolchainError, build_elf

    core = _core(core)
    build_dir = Path(build_dir)
    res = specializer.compile(model, name=name, out_dir=build_dir / "lib", target=core.name,
                              generic_only=generic_only, flash_budget=flash_budget, prefer=prefer,
                              share_all=share_all, prune=prune, optimize=optimize, tune=tune, tune_opt=opt)
    srcs = sorted((build_dir / "lib").glob("*.c")) + [SUPPORT_DIR / "bench_harness.c"]
    defines = [f'SPZ_MODEL_HEADER="{name}.h"', f"SPZ_PREFIX={name}", f"SPZ_PREFIX_UPPER={name.upper()}"]
    if profile:
        defines.append("SPZ_PROFILE")
    try:
        elf = build_elf(srcs, [build_dir / "lib", SUPPORT_DIR], core, build_dir / "elf", opt=opt,
                        defines=defines, name=name)
    except ToolchainError as e:
        where = locate_c_error(build_dir / "lib", str(e))
        raise TargetError(f"cross-compiling {name} for {core.name} failed{where}: {e}") from None
    return res, elf


def locate_c_error(lib_dir: Path, message: str) -> str:
    """' (layer #N KIND, template T)' for the first 'file.c:LINE:' of a compiler message in generated code."""
    import re

    for m in re.finditer(r"([\w.]+\.c):(\d+):", message):
        path = Path(lib_dir) / m.group(1)
        if not path.exists():
            continue
        lines = path.read_text().splitlines()[:int(m.group(2))]
        layer = template = None
        for text in reversed(lines):
            if layer is None and text.strip().startswith("/* #") and "[" in text:
                layer = text.strip()[3:].split(" [")[0]
            if template is None and text.startswith("/* template "):
                template = text[len("/* template "):].split(" ")[0]
            if text.startswith("int ") and "_run(uint8_t *arena)" in text:
                break  # above the run function: no layer comment applies
        parts = ([f"layer {layer}"] if layer else []) + ([f"template {template}"] if template else [])
        return f" ({', '.join(parts)})" if parts else ""
    return ""


def load_inputs(path: Optional[str], res) -> list[np.ndarray]:
    if path is None:
        from specializer.oracle import random_inputs

        return random_inputs(res, np.random.default_rng(0))
    p = Path(path)
    if not p.exists():
        raise SpecializerError(f"--input {p}: no such file")
    if p.suffix == ".npz":
        z = np.load(p)
        return [np.asarray(z[f"input_{i}"], dtype=io.dtype).reshape(io.shape) for i, io in enumerate(res.inputs)]
    raw = p.read_bytes()
    io = res.inputs[0]
    need = int(np.prod(io.shape)) * np.dtype(io.dtype).itemsize
    if len(raw) != need:
        raise SpecializerError(f"--input {p}: {len(raw)} bytes, input 0 needs {need}")
    return [np.frombuffer(raw, dtype=io.dtype).reshape(io.shape)]


def bench_model(model, target: str = "cortex-m4", opt: str = "-O2", generic_only: bool = False,
                inputs: Optional[Sequence[np.ndarray]] = None, build_dir: Optional[Path] = None,
                check: bool = True, label: Optional[str] = None, input_path: Optional[str] = None,
                flash_budget="default", observe=None, prune: bool = True,
                optimize: str = "balanced", tune: bool = False) -> BenchReport:
    """Build, simulate and report one model on one core (see module docstring).

    `observe(compile_result, elf)`, if given, returns an `on_mark(id, read)` observer for the simulator run (used
    by `specializer.against` to read every layer's output at the profile marks)."""
    from specializer.api import op_macs

    from .targets.cortex_m.sim import SimError, Simulator

    core = _core(target)
    check_simulated(core)
    tmp = None
    if build_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="spz-bench-")
        build_dir = Path(tmp.name)
    try:
        res, elf = build_model_elf(model, core, Path(build_dir), opt=opt, generic_only=generic_only,
                                   flash_budget=flash_budget, prune=prune, optimize=optimize, tune=tune)
        xs = list(inputs) if inputs is not None else load_inputs(input_path, res)
        sim = Simulator(elf, core=core.name)
        try:
            r = sim.run([np.ascontiguousarray(x).tobytes() for x in xs],
                        on_mark=observe(res, elf) if observe is not None else None)
        except SimError as e:
            raise TargetError(f"simulating {res.name} on {core.name} failed{_running_layer(sim, res.graph)}: "
                              f"{str(e).splitlines()[0]}") from None
        sizes = function_sizes(elf)
    finally:
        if tmp is not None:
            tmp.cleanup()
    g = res.graph
    by_index = {op.index: op for op in g.ops}
    rows = []
    for rec in r.layers:
        op = by_index.get(rec.id) if isinstance(rec.id, int) else None
        if op is None:
            rows.append(LayerRow(str(rec.id), "-", "-", "", 0, rec.cycles, rec.instructions))
            continue
        shape = " ".join("x".join(map(str, g.t(i).shape)) for i in op.inputs[:1] if i is not None) + " -> " + \
            "x".join(map(str, g.t(op.outputs[0]).shape))
        fn = res.library.layer_functions.get(op.index, "")
        rows.append(LayerRow(op.index, op.kind, op.kernel.entry if op.kernel else "alias", shape,
                             op_macs(g, op), rec.cycles, rec.instructions,
                             variant=fn[len(res.name) + 1:] if fn.startswith(res.name + "_") else fn,
                             ceiling=practical_ceiling(g, op), code_bytes=_code_bytes(sizes, fn) if fn else 0))
    bitexact = None
    if check:
        try:
            from specializer.oracle import run_tflm

            ref = run_tflm(model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes(), xs)
            bitexact = all(np.array_equal(np.frombuffer(o, dtype=rf.dtype).reshape(rf.shape), rf)
                           for o, rf in zip(r.outputs, ref))
        except ImportError:
            bitexact = None
    macs = sum(op_macs(g, op) for op in g.ops)
    arena = res.arena_size
    return BenchReport(label=label or (Path(model).stem if not isinstance(model, (bytes, bytearray)) else "model"),
                       core=core.name, cycles=r.cycles, instructions=r.instructions, macs=macs, arena=arena,
                       stack_peak=r.stack_peak_bytes, static_ram=r.static_ram, ram_total=r.ram_total,
                       flash=r.flash, text=r.text, rodata=r.rodata, data=r.data, bss=r.bss, layers=rows,
                       bitexact=bitexact, output_hex=[o.hex() for o in r.outputs],
                       sim_instructions_per_second=r.sim_instructions_per_second, opt=opt, warnings=list(r.warnings),
                       functions=res.library.functions, kernel_layers=res.library.layers)


def bench_elf(elf: Path, target: str = "cortex-m4", inputs: Optional[Sequence[bytes]] = None,
              label: Optional[str] = None) -> BenchReport:
    """Measure an ELF that follows the contract of DESIGN.md §3 (ours or anyone's)."""
    from .targets.cortex_m.sim import Simulator

    core = _core(target)
    elf = Path(elf)
    if not elf.exists():
        raise SpecializerError(f"--elf {elf}: no such file")
    sim = Simulator(elf, core=core.name)
    r = sim.run(list(inputs) if inputs is not None else b"")
    rows = [LayerRow(rec.id, "-", "-", "", 0, rec.cycles, rec.instructions) for rec in r.layers]
    return BenchReport(label=label or elf.name, core=core.name, cycles=r.cycles, instructions=r.instructions,
                       macs=0, arena=r.arena_used, stack_peak=r.stack_peak_bytes, static_ram=r.static_ram,
                       ram_total=r.ram_total, flash=r.flash, text=r.text, rodata=r.rodata, data=r.data, bss=r.bss,
                       layers=rows, output_hex=[o.hex() for o in r.outputs],
                       sim_instructions_per_second=r.sim_instructions_per_second, warnings=list(r.warnings))


# ---- presentation ------------------------------------------------------------------------------------------
def format_report(rep: BenchReport) -> str:
    L = [f"{rep.label} on {rep.core} (simulated, cost model of COST_MODEL.md{', ' + rep.opt if rep.opt else ''})"]
    if rep.layers and rep.macs:
        width = max([len(r.variant or r.kernel) for r in rep.layers] + [7])
        L.append(f"{'layer':>7} {'op':<18} {'variant (kernel function)':<{width}} {'shape':<26} {'MACs':>10} "
                 f"{'cycles':>11} {'MAC/cyc':>7} {'ceiling':>7} {'code B':>7} {'%':>5}")
        for row in rep.layers:
            share = 100.0 * row.cycles / rep.cycles if rep.cycles else 0
            ceil = f"{row.ceiling:.2f}" if row.ceiling else "-"
            L.append(f"{str(row.index):>7} {row.op[:18]:<18} {row.variant or row.kernel:<{width}} {row.shape:<26} "
                     f"{row.macs:>10,} {row.cycles:>11,} {row.mac_per_cycle:>7.3f} {ceil:>7} "
                     f"{row.code_bytes or '':>7} {share:>5.1f}")
    elif rep.layers:
        for row in rep.layers:
            L.append(f"  mark {row.index}: {row.cycles:,} cycles")
    L.append(f"total: {rep.cycles:,} cycles, {rep.instructions:,} instructions"
             + (f", {rep.macs:,} MACs, {rep.mac_per_cycle:.3f} MAC/cycle" if rep.macs else ""))
    L.append(f"RAM: {rep.ram_total:,} bytes = static {rep.static_ram:,} (arena {rep.arena if rep.arena is not None else '?'}"
             f") + stack peak {rep.stack_peak:,}")
    L.append(f"flash: {rep.flash:,} bytes (text {rep.text:,}, rodata {rep.rodata:,}, data {rep.data:,})"
             + (f"; {rep.functions} kernel functions for {rep.kernel_layers} layers" if rep.functions else ""))
    if rep.bitexact is not None:
        L.append(f"output bit-exact with tflite-micro: {'yes' if rep.bitexact else 'NO'}")
    L.append(f"simulator speed: {rep.sim_instructions_per_second / 1e6:.1f} M instructions/s")
    for w in rep.warnings:
        L.append(f"warning: {w}")
    return "\n".join(L) + "\n"


def format_side_by_side(spec: BenchReport, gen: BenchReport) -> str:
    """Per layer: specialized vs generic cycles and the speed-up (the ablation of specialization)."""
    by = {r.index: r for r in gen.layers}
    L = [f"specialized vs generic kernels, {spec.core}, {spec.opt}",
         f"{'layer':>7} {'op':<18} {'specialized':>12} {'generic':>12} {'speed-up':>8}  specialized kernel"]
    for r in spec.layers:
        g = by.get(r.index)
        if g is None:
            continue
        L.append(f"{str(r.index):>7} {r.op[:18]:<18} {r.cycles:>12,} {g.cycles:>12,} "
                 f"{(g.cycles / r.cycles if r.cycles else 0):>7.2f}x  {r.variant or r.kernel}")
    L.append(f"{'total':>7} {'':<18} {spec.cycles:>12,} {gen.cycles:>12,} {gen.cycles / spec.cycles:>7.2f}x")
    L.append(f"flash: specialized {spec.flash:,} B, generic {gen.flash:,} B; RAM: specialized {spec.ram_total:,} B, "
             f"generic {gen.ram_total:,} B")
    return "\n".join(L) + "\n"


def plot_layers(reports: Sequence[BenchReport], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.35 * max(len(r.layers) for r in reports) + 2), 4.5))
    width = 0.8 / len(reports)
    for k, rep in enumerate(reports):
        rows = [r for r in rep.layers if r.op != "-"]
        xs = np.arange(len(rows)) + k * width
        ax.bar(xs, [r.cycles for r in rows], width=width, label=f"{rep.label} ({rep.core})")
        ax.set_xticks(np.arange(len(rows)) + width * (len(reports) - 1) / 2)
        ax.set_xticklabels([f"{r.index}\n{r.op[:10]}" for r in rows], fontsize=6)
    ax.set_ylabel("cycles")
    ax.set_title("cycles per layer (simulated)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bench_main(args) -> int:
    if getattr(args, "against", None):  # --against cmsis-nn: its own table, JSON and plot (specializer.against)
        from .against import against_main

        return against_main(args)
    reports = []
    if args.model is None and not args.elf:
        raise SpecializerError("bench needs a model or --elf")
    if args.model is not None:
        print(f"building and simulating {args.model} for {args.target} ...", file=sys.stderr, flush=True)
        rep = bench_model(args.model, args.target, opt=args.opt, generic_only=args.generic,
                          build_dir=Path(args.build_dir) if args.build_dir else None, input_path=args.input,
                          flash_budget=getattr(args, "flash_budget", "default"),
                          prune=getattr(args, "prune", True), optimize=getattr(args, "optimize", "balanced"),
                          tune=getattr(args, "tune", False))
        reports.append(rep)
        sys.stdout.write(format_report(rep))
        if getattr(args, "check_stores", False):
            from .plancheck import check_plan_in_simulator

            res_inputs = None
            if args.input:
                from types import SimpleNamespace

                from .api import lower, _io

                gl, _ = lower(args.model, args.target)
                res_inputs = load_inputs(args.input, SimpleNamespace(inputs=_io(gl, gl.inputs)))
            bad, stores, _ = check_plan_in_simulator(args.model, args.target, opt=args.opt, inputs=res_inputs,
                                                     optimize=getattr(args, "optimize", "balanced"),
                                                     prune=getattr(args, "prune", True))
            where = "; ".join(f"layer #{v[0]} at arena offset {v[1]} ({v[2]} B)" for v in bad[:4] if v)
            print(f"arena stores checked against the memory plan: {stores:,}, outside it: {len(bad)}"
                  + (f" (first: {where})" if bad else ""))
            if bad:
                raise TargetError(f"{len(bad)} arena stores outside the memory plan (first: {where})")
        if getattr(args, "vs_generic", False) and not args.generic:
            print(f"building and simulating the generic library of {args.model} ...", file=sys.stderr, flush=True)
            gen = bench_model(args.model, args.target, opt=args.opt, generic_only=True, input_path=args.input,
                              label=f"{rep.label} (generic kernels)")
            reports.append(gen)
            sys.stdout.write(format_side_by_side(rep, gen))
    for elf in args.elf:
        print(f"simulating {elf} on {args.target} ...", file=sys.stderr, flush=True)
        inputs = None
        if args.input and not args.input.endswith(".npz"):
            inputs = [Path(args.input).read_bytes()]
        rep = bench_elf(Path(elf), args.target, inputs=inputs)
        reports.append(rep)
        sys.stdout.write(format_report(rep))
    if len(reports) > 1:
        base = reports[0]
        print(f"{'binary':<40} {'cycles':>14} {'ratio':>7} {'RAM':>10} {'flash':>10}")
        for rep in reports:
            ratio = rep.cycles / base.cycles if base.cycles else 0
            print(f"{rep.label:<40} {rep.cycles:>14,} {ratio:>7.2f} {rep.ram_total:>10,} {rep.flash:>10,}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([r.to_dict() for r in reports], indent=1))
    if args.plot:
        plot_layers([r for r in reports if r.layers], Path(args.plot))
    return 0
