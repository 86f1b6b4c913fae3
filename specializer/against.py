"""`specializer bench MODEL --against cmsis-nn`: our library and a direct CMSIS-NN build, layer by layer.

How it works
1. `compare_against_cmsis_nn` builds both sides for the same core and optimisation level: ours with
   `bench.bench_model` (whatever kernels the registry picks) and the CMSIS-NN side with
   `cmsis_nn.build_cmsis_nn_elf` (each layer calls the CMSIS-NN function TFLM's CMSIS-NN kernels call, or our
   generic kernel where CMSIS-NN has none). Both ELFs follow the bench contract and bracket every layer with
   `spz_profile_mark`, and both get the same input.
2. Each run has an `_Observer` on the simulator's profile marks: when layer k's mark is followed by the next one,
   layer k has finished and its output tensors are still in the arena, so the observer copies them out (the
   memory plan gives their offsets). The CMSIS-NN side also differences the simulator's block counts between
   marks to name the function that took most cycles in each layer (e.g. the kernel behind a wrapper).
3. Every layer output present on both sides is compared byte for byte (first differing element reported); the
   final outputs are compared with the tflite-micro interpreter when it is installed. Ours matches TFLM, so a
   CMSIS-NN layer that differs from ours differs from TFLM.
4. `AgainstReport` holds both `BenchReport`s and the per-layer rows; `format_against` prints one table (per layer:
   op and shape, our kernel and cycles, the CMSIS-NN function and its cycles, speed-up = CMSIS-NN cycles / ours,
   agreement) and the totals (cycles; RAM: activations + CMSIS-NN scratch vs our arena; flash: CMSIS-NN objects
   linked + weights vs our library); `to_json` is our report plus `against: {...}`; `plot_against` draws two
   bars per layer.
5. A fault while either side runs (a HardFault in a kernel, an instruction the simulator cannot execute such as
   MVE on cortex-m55) becomes one `TargetError` line naming the side and the layer that was running.
"""
from __future__ import annotations

import bisect
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional, Sequence

import numpy as np

from .errors import SpecializerError, TargetError
from .ir import NUMPY_DTYPES, Graph
from .passes.plan_memory import tensor_ranges

END_MARK = 0xFFFFFFFF
NO_KERNEL = "ours (no CMSIS-NN kernel)"


# ---- observing a run ----------------------------------------------------------------------------------------
def _symbols(elf: Path) -> tuple[dict, list]:
    """(all symbol addresses by name, sorted [(start, end, name)] of functions) of an ELF."""
    from elftools.elf.elffile import ELFFile

    names, funcs = {}, []
    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        for s in symtab.iter_symbols() if symtab is not None else ():
            if not s.name or s["st_shndx"] == "SHN_UNDEF":
                continue
            names.setdefault(s.name, s["st_value"])
            if s["st_info"]["type"] == "STT_FUNC":
                start = s["st_value"] & ~1
                funcs.append((start, start + max(int(s["st_size"]), 2), s.name))
    funcs.sort()
    return names, funcs


class _Observer:
    """`on_mark` observer of one run (see module docstring, 2)."""

    def __init__(self, g: Graph, elf: Path, sim=None):
        names, self._funcs = _symbols(elf)
        if "g_arena" not in names:
            raise TargetError(f"{elf}: no g_arena symbol (not linked with bench_harness.c)")
        self.arena = names["g_arena"]
        self.g = g
        self.ops = {op.index: op for op in g.ops if op.alias_of is None}
        self.running: Optional[int] = None  # the layer whose mark came last (None before the first / after END)
        self.started = False
        self.outputs: dict[int, np.ndarray] = {}  # tensor id -> contents right after its layer
        self.hot: dict[int, list] = {}  # layer -> [(function, static cycles)], largest first (if sim given)
        self._sim = sim
        self._starts = [f[0] for f in self._funcs]
        self._counts = None

    def _function(self, addr: int) -> str:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self._funcs[i][1]:
            return self._funcs[i][2]
        return f"{addr:#x}"

    def __call__(self, mark: int, read) -> None:
        self.started = True
        op = self.ops.get(self.running) if self.running is not None else None
        if op is not None:
            plan = self.g.memory_plan
            for tid in op.outputs:
                t = self.g.t(tid)
                if plan.offsets.get(tid) is not None:  # a concatenation slice: its chunks, in order
                    raw = b"".join(read(self.arena + lo, hi - lo) for lo, hi in tensor_ranges(self.g, tid))
                    self.outputs[tid] = np.frombuffer(raw, dtype=NUMPY_DTYPES[t.dtype]).copy()
        if self._sim is not None:
            counts = self._sim.block_counts()
            if self._counts is not None and self.running is not None:
                per: dict[str, int] = {}
                for addr, (_, cyc) in counts.items():
                    d = cyc - self._counts.get(addr, (0, 0))[1]
                    if d:
                        fn = self._function(addr)
                        per[fn] = per.get(fn, 0) + d
                self.hot[self.running] = sorted(per.items(), key=lambda kv: -kv[1])
            self._counts = counts
        self.running = None if mark == END_MARK else int(mark)

    def where(self, side: str) -> str:
        """' in layer #k KIND (kernel)' for the layer that was running, for error messages."""
        if not self.started:
            return " before the first layer"
        if self.running is None:
            return " after the last layer"
        op = self.ops.get(self.running)
        if op is None:
            return f" in layer #{self.running}"
        kernel = op.kernel.entry if op.kernel is not None else "?"
        return f" in layer #{op.index} {op.kind} ({kernel})"


def _fault(side: str, core, err: Exception, obs: Optional[_Observer]) -> TargetError:
    where = obs.where(side) if obs is not None else ""
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    hint = f" ({core.name} code uses MVE/Helium, which the simulator cannot execute)" if "mve" in core.features else ""
    return TargetError(f"{side} on {core.name}{where}: {msg}{hint}")


# ---- the comparison -----------------------------------------------------------------------------------------
@dataclass
class LayerCompare:
    index: int
    op: str
    shape: str
    ours_kernel: str
    ours_cycles: Optional[int]
    cmsis_function: str  # the CMSIS-NN entry point called, or NO_KERNEL
    cmsis_hot: str  # the function that took most cycles in the layer on the CMSIS-NN side
    cmsis_cycles: Optional[int]
    bitexact: Optional[bool]  # None: output not compared (the layer exists on one side only)
    first_diff: Optional[int] = None  # flat element index of the first difference
    num_diff: int = 0
    fallback_reason: str = ""

    @property
    def speedup(self) -> Optional[float]:
        """CMSIS-NN cycles / our cycles (> 1: we are faster)."""
        if self.ours_cycles and self.cmsis_cycles:
            return self.cmsis_cycles / self.ours_cycles
        return None


@dataclass
class AgainstReport:
    model: str
    core: str
    opt: str
    cmsis_nn_path: str
    ours: Any  # bench.BenchReport
    cmsis: Any  # bench.BenchReport of the CMSIS-NN build
    layers: list
    cmsis_bitexact: Optional[bool]  # CMSIS-NN final outputs == tflite-micro (None: oracle not installed)
    outputs_agree: bool  # CMSIS-NN final outputs == ours
    activation_arena: int
    cmsis_scratch: dict  # op index -> bytes
    flash_ours: dict
    flash_cmsis: dict
    warnings: list = field(default_factory=list)

    @property
    def layers_agree(self) -> bool:
        return all(r.bitexact is not False for r in self.layers)

    @property
    def mismatches(self) -> list:
        return [r for r in self.layers if r.bitexact is False]

    @property
    def speedup(self) -> float:
        return self.cmsis.cycles / self.ours.cycles if self.ours.cycles else 0.0

    def against_dict(self) -> dict:
        c = self.cmsis
        return {
            "name": "cmsis-nn", "path": self.cmsis_nn_path, "opt": self.opt,
            "cycles": c.cycles, "instructions": c.instructions, "ram_total": c.ram_total,
            "arena": c.arena, "activation_arena": self.activation_arena,
            "scratch_max": max(self.cmsis_scratch.values(), default=0), "stack_peak": c.stack_peak,
            "static_ram": c.static_ram, "flash": c.flash,
            "flash_cmsis_nn_objects": self.flash_cmsis.get("cmsis-nn", 0),
            "flash_weights": self.flash_cmsis.get("weights", 0),
            "flash_generated": self.flash_cmsis.get("generated", 0),
            "cmsis_nn_objects": self.flash_cmsis.get("cmsis-nn objects", {}),
            "bitexact": self.cmsis_bitexact if self.cmsis_bitexact is not None else self.outputs_agree,
            "bitexact_with_tflm": self.cmsis_bitexact, "outputs_agree_with_ours": self.outputs_agree,
            "layers_agree": self.layers_agree,
            "speedup": round(self.speedup, 4),
            "layers": [{"index": r.index, "op": r.op, "function": r.cmsis_function, "hot_function": r.cmsis_hot,
                        "cycles": r.cmsis_cycles, "bitexact": r.bitexact, "first_diff": r.first_diff,
                        "num_diff": r.num_diff, "scratch": self.cmsis_scratch.get(r.index, 0),
                        **({"fallback_reason": r.fallback_reason} if r.fallback_reason else {})}
                       for r in self.layers],
            "mismatches": [{"index": r.index, "op": r.op, "function": r.cmsis_function, "first_diff": r.first_diff,
                            "num_diff": r.num_diff} for r in self.mismatches],
            "warnings": list(self.warnings) + list(c.warnings),
        }

    def to_dict(self) -> dict:
        """Our BenchReport's JSON, with `speedup_vs_cmsis_nn` on each of our layers and `against: {...}`."""
        d = self.ours.to_dict()
        by_index = {r.index: r for r in self.layers}
        for row in d.get("layers", []):
            r = by_index.get(row.get("index"))
            sp = r.speedup if r is not None else None
            row["speedup_vs_cmsis_nn"] = round(sp, 4) if sp is not None else None
        d["flash_by_origin"] = {k: v for k, v in self.flash_ours.items() if k != "cmsis-nn objects"}
        d["against"] = self.against_dict()
        return d


def _shape(g: Graph, op) -> str:
    ins = [g.t(i) for i in op.inputs if i is not None and not g.t(i).is_const][:1]
    return "x".join(map(str, ins[0].shape)) + "->" + "x".join(map(str, g.t(op.outputs[0]).shape)) if ins else \
        "->" + "x".join(map(str, g.t(op.outputs[0]).shape))


def _first_diff(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    diff = np.flatnonzero(a.reshape(-1) != b.reshape(-1))
    return (int(diff[0]), int(diff.size)) if diff.size else (-1, 0)


def _model_bytes(model) -> Optional[bytes]:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    if isinstance(model, (str, Path)):
        return Path(model).read_bytes()
    return None


def compare_against_cmsis_nn(model, target: str = "cortex-m4", cmsis_nn=None, opt: str = "-O3",
                             inputs: Optional[Sequence[np.ndarray]] = None, input_path: Optional[str] = None,
                             build_dir=None, generic_only: bool = False, check: bool = True,
                             label: Optional[str] = None, cache_dir=None) -> AgainstReport:
    """Build and simulate ours and the CMSIS-NN build of `model` on `target`; compare per layer (module doc)."""
    from .api import _io, op_macs
    from .bench import BenchReport, LayerRow, _core, bench_model, load_inputs
    from .cmsis_nn import build_cmsis_nn_elf, find_cmsis_nn, flash_by_origin
    from .targets.cortex_m.sim import SimError, Simulator

    core = _core(target)
    root = find_cmsis_nn(cmsis_nn)
    label = label or (Path(model).stem if isinstance(model, (str, Path)) else "model")
    tmp = None
    if build_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="spz-against-")
        build_dir = tmp.name
    build_dir = Path(build_dir)
    try:
        cm = build_cmsis_nn_elf(model, core, build_dir / "cmsis-nn", cmsis_nn=root, opt=opt, cache_dir=cache_dir)
        g_c = cm.graph
        xs = list(inputs) if inputs is not None else load_inputs(
            input_path, SimpleNamespace(inputs=_io(g_c, g_c.inputs)))
        xs = [np.ascontiguousarray(x) for x in xs]

        # our side (bench_model; the observer copies each layer's output at the marks)
        ours_obs: list[_Observer] = []

        def observe(res, elf):
            ours_obs.append(_Observer(res.graph, elf))
            return ours_obs[0]

        try:
            ours = bench_model(model, core.name, opt=opt, generic_only=generic_only, inputs=xs,
                               build_dir=build_dir / "ours", check=False, label=label, observe=observe)
        except SimError as e:
            raise _fault("our library", core, e, ours_obs[0] if ours_obs else None) from None

        # the CMSIS-NN side
        sim = Simulator(cm.elf, core=core.name)
        obs = _Observer(g_c, cm.elf, sim=sim)
        try:
            r = sim.run([x.tobytes() for x in xs], on_mark=obs)
        except SimError as e:
            raise _fault("CMSIS-NN build", core, e, obs) from None
        by_index = {op.index: op for op in g_c.ops}
        status = r.extra.get("bench_status", 0)
        if status:  # <name>_run returns layer index + 1 when a CMSIS-NN call fails
            op = by_index.get(status - 1)
            what = (f"in layer #{op.index} {op.kind}: {cm.layers[op.index].function} returned an error"
                    if op is not None and op.index in cm.layers else f"run returned status {status}")
            raise TargetError(f"CMSIS-NN build on {core.name} {what}")

        # per-layer rows of the CMSIS-NN side, as a BenchReport
        rows = []
        for rec in r.layers:
            op = by_index.get(rec.id) if isinstance(rec.id, int) else None
            if op is None:
                rows.append(LayerRow(str(rec.id), "-", "-", "", 0, rec.cycles, rec.instructions))
                continue
            fn = cm.layers[op.index].function if op.index in cm.layers else f"{NO_KERNEL}: {op.kernel.entry}"
            rows.append(LayerRow(op.index, op.kind, fn, _shape(g_c, op), op_macs(g_c, op), rec.cycles,
                                 rec.instructions))
        cmsis = BenchReport(label=f"{label} (CMSIS-NN direct)", core=core.name, cycles=r.cycles,
                            instructions=r.instructions, macs=sum(op_macs(g_c, op) for op in g_c.ops),
                            arena=cm.arena_size, stack_peak=r.stack_peak_bytes, static_ram=r.static_ram,
                            ram_total=r.ram_total, flash=r.flash, text=r.text, rodata=r.rodata, data=r.data,
                            bss=r.bss, layers=rows, output_hex=[o.hex() for o in r.outputs],
                            sim_instructions_per_second=r.sim_instructions_per_second, opt=opt,
                            warnings=list(r.warnings))

        # outputs: both sides vs tflite-micro, CMSIS-NN vs ours
        outputs_agree = list(r.outputs) == [bytes.fromhex(h) for h in ours.output_hex]
        cmsis_bitexact = None
        raw = _model_bytes(model) if check else None
        if raw is not None:
            try:
                from .oracle import run_tflm

                ref = run_tflm(raw, xs)

                def same(outs):
                    return all(np.array_equal(np.frombuffer(o, dtype=rf.dtype).reshape(rf.shape), rf)
                               for o, rf in zip(outs, ref))

                ours.bitexact = same([bytes.fromhex(h) for h in ours.output_hex])
                cmsis.bitexact = cmsis_bitexact = same(r.outputs)
            except ImportError:
                pass

        # per layer: cycles side by side, outputs compared where both sides produced the tensor
        ours_rows = {row.index: row for row in ours.layers if isinstance(row.index, int)}
        cm_rows = {row.index: row for row in rows if isinstance(row.index, int)}
        ours_out = ours_obs[0].outputs if ours_obs else {}
        pruned = ours_obs[0].g.meta.get("pruned_channels", {}) if ours_obs else {}
        layers = []
        for op in g_c.ops:
            if op.alias_of is not None:
                continue
            orow, crow = ours_rows.get(op.index), cm_rows.get(op.index)
            agree, first, ndiff = None, None, 0
            for tid in op.outputs:
                a, b = obs.outputs.get(tid), ours_out.get(tid)
                if a is not None and tid in pruned:  # ours holds only the channels passes/prune_channels kept
                    a = a.reshape(-1, g_c.t(tid).shape[-1])[:, list(pruned[tid])].ravel()
                if a is None or b is None or a.shape != b.shape:
                    continue
                i, n = _first_diff(a, b)
                if n:
                    agree, first, ndiff = False, (i if first is None else first), ndiff + n
                elif agree is None:
                    agree = True
            hot = obs.hot.get(op.index, [])
            layers.append(LayerCompare(
                index=op.index, op=op.kind, shape=_shape(g_c, op),
                ours_kernel=orow.kernel if orow is not None else "-",
                ours_cycles=orow.cycles if orow is not None else None,
                cmsis_function=cm.layers[op.index].function if op.index in cm.layers else NO_KERNEL,
                cmsis_hot=hot[0][0] if hot else "", cmsis_cycles=crow.cycles if crow is not None else None,
                bitexact=agree, first_diff=first, num_diff=ndiff, fallback_reason=cm.fallback.get(op.index, "")))
        # a layer our compiler ran in row bands with the next one (passes/fuse_bands) has no output tensor of its
        # own: it is judged by the pair's output, the next layer's
        banded = {i: op.index for op in (ours_obs[0].g.ops if ours_obs else ()) if op.kind in ("BANDED_PAIR", "BANDED_FC")
                  for i in op.attrs.members if i != op.index}
        by_layer = {r.index: r for r in layers}
        for r in layers:
            if r.index in banded and r.bitexact is None and banded[r.index] in by_layer:
                r.bitexact = by_layer[banded[r.index]].bitexact
                r.ours_kernel = f"band_pair with #{banded[r.index]}"
        warnings = []
        ours_map = build_dir / "ours" / "elf" / "net.map"
        return AgainstReport(
            model=label, core=core.name, opt=opt, cmsis_nn_path=str(root), ours=ours, cmsis=cmsis, layers=layers,
            cmsis_bitexact=cmsis_bitexact, outputs_agree=outputs_agree, activation_arena=cm.activation_arena,
            cmsis_scratch=dict(cm.scratch), flash_ours=flash_by_origin(ours_map) if ours_map.exists() else {},
            flash_cmsis=flash_by_origin(cm.map_file), warnings=warnings)
    finally:
        if tmp is not None:
            tmp.cleanup()


# ---- presentation -------------------------------------------------------------------------------------------
def _yn(v: Optional[bool]) -> str:
    return "-" if v is None else ("yes" if v else "NO")


def format_against(rep: AgainstReport) -> str:
    o, c = rep.ours, rep.cmsis
    L = [f"{rep.model} on {rep.core} ({rep.opt}, simulated): ours vs CMSIS-NN called directly "
         f"(CMSIS-NN from {rep.cmsis_nn_path})",
         f"{'layer':>5} {'op':<18} {'shape':<24} {'our kernel':<24} {'our cycles':>12} "
         f"{'CMSIS-NN function':<34} {'CMSIS-NN cycles':>15} {'speed-up':>8} {'agree':>5}  hottest CMSIS-NN-side "
         "function"]
    for r in rep.layers:
        sp = f"{r.speedup:.2f}x" if r.speedup is not None else "-"
        agree = _yn(r.bitexact) if r.bitexact is not False else f"NO@{r.first_diff}"
        L.append(f"{r.index:>5} {r.op[:18]:<18} {r.shape[:24]:<24} {r.ours_kernel[:24]:<24} "
                 f"{(r.ours_cycles or 0):>12,} {r.cmsis_function[:34]:<34} {(r.cmsis_cycles or 0):>15,} "
                 f"{sp:>8} {agree:>5}  {r.cmsis_hot}")
    L.append("speed-up = CMSIS-NN cycles / our cycles (> 1: ours is faster); agree: the layer's output is "
             "byte-identical on both sides")
    L.append(f"total cycles: ours {o.cycles:,}, CMSIS-NN {c.cycles:,}: speed-up {rep.speedup:.2f}x")
    scratch = max(rep.cmsis_scratch.values(), default=0)
    L.append(f"RAM: ours {o.ram_total:,} B (arena {o.arena:,} + stack {o.stack_peak:,} + other static "
             f"{o.static_ram - (o.arena or 0):,}); CMSIS-NN {c.ram_total:,} B (arena {c.arena:,} = activations "
             f"{rep.activation_arena:,} + CMSIS-NN scratch {c.arena - rep.activation_arena:,} [largest buffer "
             f"{scratch:,}], stack {c.stack_peak:,}, other static {c.static_ram - c.arena:,})")
    fo, fc = rep.flash_ours, rep.flash_cmsis
    objs = fc.get("cmsis-nn objects", {})
    L.append(f"flash: ours {o.flash:,} B (generated code {fo.get('generated', 0):,}, weights {fo.get('weights', 0):,}"
             f"); CMSIS-NN {c.flash:,} B (CMSIS-NN objects {fc.get('cmsis-nn', 0):,} in {len(objs)} objects, "
             f"weights {fc.get('weights', 0):,}, glue + our kernels for other layers {fc.get('generated', 0):,}); "
             f"both include startup/harness {fc.get('runtime', 0):,} and libc {fc.get('libc', 0):,}")
    L.append(f"outputs: ours bit-exact with tflite-micro: {_yn(o.bitexact)}; CMSIS-NN: {_yn(rep.cmsis_bitexact)}; "
             f"final outputs agree: {_yn(rep.outputs_agree)}; layers compared: "
             f"{sum(r.bitexact is not None for r in rep.layers)}, differing: {len(rep.mismatches)}")
    for r in rep.mismatches:
        L.append(f"  layer #{r.index} {r.op} ({r.cmsis_function}): {r.num_diff} values differ, first at flat index "
                 f"{r.first_diff}")
    fb = [r for r in rep.layers if r.cmsis_function == NO_KERNEL]
    if fb:
        L.append("on our generic kernel in the CMSIS-NN build: " + "; ".join(
            f"#{r.index} {r.op} ({r.fallback_reason})" for r in fb))
    for w in rep.warnings + list(c.warnings) + list(o.warnings):
        L.append(f"warning: {w}")
    return "\n".join(L) + "\n"


def plot_against(rep: AgainstReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rep.layers if r.ours_cycles is not None or r.cmsis_cycles is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.4 * len(rows) + 2), 4.5))
    xs = np.arange(len(rows))
    ax.bar(xs - 0.2, [r.ours_cycles or 0 for r in rows], width=0.4, label=f"ours ({rep.ours.cycles:,} cycles)")
    ax.bar(xs + 0.2, [r.cmsis_cycles or 0 for r in rows], width=0.4,
           label=f"CMSIS-NN direct ({rep.cmsis.cycles:,} cycles)")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"#{r.index} {r.op.replace('DEPTHWISE_CONV_2D', 'DW_CONV_2D')[:16]}" for r in rows],
                       fontsize=6, rotation=60, ha="right")
    ax.set_ylabel("cycles")
    ax.set_title(f"{rep.model} on {rep.core} ({rep.opt}): cycles per layer, ours vs CMSIS-NN (simulated)",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def against_main(args) -> int:
    """CLI: `specializer bench MODEL --against cmsis-nn [--cmsis-nn PATH] [--json F] [--plot F]`."""
    from .bench import bench_elf, format_report

    if args.model is None:
        raise SpecializerError("--against cmsis-nn needs a model")
    print(f"building {args.model} for {args.target} twice (ours, CMSIS-NN direct) and simulating both ...",
          file=sys.stderr, flush=True)
    rep = compare_against_cmsis_nn(args.model, args.target, cmsis_nn=args.cmsis_nn, opt=args.opt,
                                   input_path=args.input, build_dir=args.build_dir, generic_only=args.generic)
    sys.stdout.write(format_against(rep))
    docs = [rep.to_dict()]
    for elf in args.elf:
        inputs = [Path(args.input).read_bytes()] if args.input and not args.input.endswith(".npz") else None
        other = bench_elf(Path(elf), args.target, inputs=inputs)
        sys.stdout.write(format_report(other))
        docs.append(other.to_dict())
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(docs, indent=1))
    if args.plot:
        plot_against(rep, Path(args.plot))
    return 0
