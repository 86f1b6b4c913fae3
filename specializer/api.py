"""Python API: compile a .tflite model into a C library, inspect a model.

How it works
1. `compile()` validates the name and output directory first, imports the model, runs the pass pipeline for the
   target core (None = portable C, host or any Cortex-M), emits the sources, and only then writes them: into a
   temporary directory next to `out_dir`, moved into place file by file. Any error leaves nothing behind.
2. `CompileResult` keeps the final graph and the I/O description, and can build a host library (tests) with
   `host_library()`.
3. `inspect_model()` reports ops, shapes, quantization, MACs per layer and the memory plan.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union


from .emit import C_IDENT, C_KEYWORDS, EmittedLibrary, emit_library
from .errors import InvalidNameError, OutputError, SpecializerError, TargetError
from .frontend import load_model
from .ir import Graph, dump
from .pipeline import run_pipeline

RESERVED_NAMES = frozenset({"spz", "main"})


OPTIMIZE = ("balanced", "time", "ram")  # what passes/fuse_bands trades: see fuse_bands


def check_name(name: str) -> str:
    if not isinstance(name, str) or not C_IDENT.match(name) or name in C_KEYWORDS or name in RESERVED_NAMES:
        raise InvalidNameError(f"invalid --name {name!r}: must be a C identifier (letters, digits, underscore; "
                               "not starting with a digit; not a C keyword)")
    if name.startswith("spz_") or name.startswith("__"):
        raise InvalidNameError(f"invalid --name {name!r}: the prefixes 'spz_' and '__' are reserved")
    return name


def resolve_core(target: Optional[str]) -> Any:
    if target is None or target in ("host", "generic", "portable"):
        return None
    try:
        from .targets.cortex_m.cores import get_core
    except ImportError as e:  # pragma: no cover
        raise TargetError(f"target support unavailable: {e}") from None
    try:
        return get_core(target)
    except ValueError as e:
        raise TargetError(str(e)) from None


@dataclass
class IOInfo:
    name: str
    shape: tuple
    dtype: str
    scale: Optional[float]
    zero_point: Optional[int]


@dataclass
class CompileResult:
    name: str
    graph: Graph
    library: EmittedLibrary
    out_dir: Optional[Path]
    inputs: list[IOInfo]
    outputs: list[IOInfo]
    core: Any = None

    @property
    def arena_size(self) -> int:
        return self.library.arena_size

    @property
    def files(self) -> list[Path]:
        return [self.out_dir / f for f in sorted(self.library.files)] if self.out_dir else []

    def host_library(self, sanitize: bool = False, build_dir: Optional[Path] = None):
        """Compile the written sources for the host and return a runner (`.run(list_of_arrays)`)."""
        from .runtime.hostrun import HostLibrary, IOSpec, build_host_library

        if self.out_dir is None:
            raise ValueError("host_library() needs a result written to out_dir")
        so = build_host_library(self.out_dir, self.name, sanitize=sanitize,
                                out=(Path(build_dir) / f"lib{self.name}{'_san' if sanitize else ''}.so")
                                if build_dir else None)
        return HostLibrary(so, self.name, self.arena_size,
                           [IOSpec(i.dtype, i.shape) for i in self.inputs],
                           [IOSpec(o.dtype, o.shape) for o in self.outputs], sanitized=sanitize)


def _io(g: Graph, tids) -> list[IOInfo]:
    out = []
    for tid in tids:
        t = g.t(tid)
        q = t.quant
        out.append(IOInfo(t.name, t.shape, t.dtype, q.scale[0] if q else None, q.zero_point[0] if q else None))
    return out


def lower(model: Union[str, os.PathLike, bytes, Graph], target: Optional[str] = None, *,
          verify_each: bool = False, dump_after: Optional[str] = None, dump_sink=None,
          generic_only: bool = False, name: str = "model", flash_budget: Any = "default",
          prefer: Any = None, share_all: bool = False, prune: bool = True,
          optimize: str = "balanced", tune: bool = False, tune_opt: str = "-O3",
          tune_report: Optional[dict] = None) -> tuple[Graph, Any]:
    """Import (unless given a Graph) and run the pipeline; returns (planned graph, core).

    `flash_budget`: bytes the specialized layers' constant streams may take ("default": their int8 form plus
    max(32 KiB, 8%); None: the fastest variant everywhere; 0: the smallest). `tune`: rank the variants by their
    cycles measured in the simulator at `tune_opt` (specializer/tune.py, cached) instead of by estimates;
    `tune_report` (a dict) receives what the tuning did."""
    core = resolve_core(target)
    if optimize not in OPTIMIZE:
        raise SpecializerError(f"--optimize must be one of {', '.join(OPTIMIZE)}, got {optimize!r}")
    if tune and not generic_only:
        if core is None or isinstance(model, Graph):
            raise SpecializerError("--tune needs a --target core and a .tflite model (it times the variants in "
                                   "the simulator)")
        from .bench import check_simulated
        from .tune import measure_variants, tuned_prefer

        check_simulated(core)
        data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
        prefer = tuned_prefer(prefer, measure_variants(data, core, opt=tune_opt, report=tune_report))
    if flash_budget not in ("default", None) and (not isinstance(flash_budget, int) or flash_budget < 0):
        raise SpecializerError(f"--flash-budget must be a number of bytes >= 0, got {flash_budget!r}")
    g = model if isinstance(model, Graph) else load_model(model, name=name)
    g = run_pipeline(g, core, verify_each=verify_each, dump_after=dump_after, dump_sink=dump_sink,
                     generic_only=generic_only, flash_budget=flash_budget, prefer=prefer, share_all=share_all,
                     prune=prune, optimize=optimize)
    return g, core


def compile(model: Union[str, os.PathLike, bytes, Graph], name: str = "net",
            out_dir: Union[str, os.PathLike, None] = "out", target: Optional[str] = None, *,
            verify_each: bool = False, dump_after: Optional[str] = None, dump_sink=None,
            generic_only: bool = False, flash_budget: Any = "default", prefer: Any = None,
            share_all: bool = False, prune: bool = True, optimize: str = "balanced", tune: bool = False,
            tune_opt: str = "-O3", tune_report: Optional[dict] = None) -> CompileResult:
    """Compile `model` into C sources under `out_dir` (<name>.h, <name>.c, <name>_weights.c, runtime headers).

    Raises a `SpecializerError` subclass for any problem with the input; writes nothing in that case.
    """
    check_name(name)
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        _check_out_dir(out_path)
    g, core = lower(model, target, verify_each=verify_each, dump_after=dump_after, dump_sink=dump_sink,
                    generic_only=generic_only, name=name, flash_budget=flash_budget, prefer=prefer,
                    share_all=share_all, prune=prune, optimize=optimize, tune=tune, tune_opt=tune_opt,
                    tune_report=tune_report)
    lib = emit_library(g, name, core)
    if out_path is not None:
        _write_atomically(out_path, lib.files)
    return CompileResult(name, g, lib, out_path, _io(g, g.inputs), _io(g, g.outputs), core)


def _check_out_dir(p: Path) -> None:
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot write output directory {p}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write output directory {p}: {probe} is not writable")


def _write_atomically(out: Path, files: dict) -> None:
    created = not out.exists()
    parent = out.parent if created else out
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".spz-", dir=parent))
    except OSError as e:
        raise OutputError(f"cannot write output directory {out}: {e.strerror or e}") from None
    try:
        for fname, text in files.items():
            (tmp / fname).write_text(text)
        out.mkdir(parents=True, exist_ok=True)
        for fname in files:
            os.replace(tmp / fname, out / fname)
    except OSError as e:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise OutputError(f"cannot write output directory {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- inspection -------------------------------------------------------------------------------------------
def op_macs(g: Graph, op) -> int:
    """Multiply-accumulates of an op, counted as MANIFEST.json counts them."""
    if op.kind in ("BANDED_PAIR", "BANDED_FC"):
        return op.attrs.macs
    if op.kind == "TRANSPOSE_CONV":
        w = g.t(op.inputs[1])
        return g.t(op.inputs[2]).size * w.shape[0] * w.shape[1] * w.shape[2]
    if op.kind == "CONV_2D":
        w = g.t(op.inputs[1])
        return g.t(op.outputs[0]).size * w.shape[1] * w.shape[2] * w.shape[3]
    if op.kind == "DEPTHWISE_CONV_2D":
        w = g.t(op.inputs[1])
        return g.t(op.outputs[0]).size * w.shape[1] * w.shape[2]
    if op.kind == "FULLY_CONNECTED":
        w = g.t(op.inputs[1])
        return g.t(op.outputs[0]).size * w.shape[1]
    if op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        x = g.t(op.inputs[0])
        w_in = g.t(op.inputs[4]) if op.input(4) is not None else g.t(op.inputs[1])
        w_rec = g.t(op.inputs[8]) if op.input(8) is not None else g.t(op.inputs[5])
        steps = x.shape[1] if not op.attrs.time_major else x.shape[0]
        batch = x.shape[0] if not op.attrs.time_major else x.shape[1]
        return 4 * (w_in.size + w_rec.size) * steps * batch
    return 0


def _q(t) -> str:
    if t.quant is None:
        return t.dtype
    if t.quant.per_channel:
        return f"{t.dtype} per-channel[{len(t.quant.scale)}]"
    return f"{t.dtype} s={t.quant.scale[0]:.6g} zp={t.quant.zero_point[0]}"


def inspect_model(model: Union[str, os.PathLike, bytes], target: Optional[str] = None,
                  dump_after: Optional[str] = None) -> str:
    dumps: list[str] = []
    raw = load_model(model)
    g, core = lower(raw, target, dump_after=dump_after, dump_sink=dumps.append)
    L = [f"model: {raw.meta.get('source', '')}", f"target: {getattr(core, 'name', 'portable C')}", "",
         "imported ops:"]
    total = 0
    for op in raw.ops:
        ins = [raw.t(i) for i in op.inputs if i is not None and not raw.t(i).is_const]
        w = [raw.t(i) for i in op.inputs if i is not None and raw.t(i).is_const]
        out = raw.t(op.outputs[0])
        macs = op_macs(raw, op)
        total += macs
        L.append(f"  #{op.index:<3} {op.kind:<28} in {', '.join('x'.join(map(str, t.shape)) for t in ins) or '-'}"
                 f" -> {'x'.join(map(str, out.shape))}  [{_q(out)}]"
                 + (f"  weights {'x'.join(map(str, w[0].shape))} {_q(w[0])}" if w and w[0].size > 1 else "")
                 + (f"  MACs {macs:,}" if macs else ""))
    L.append(f"  total MACs: {total:,}")
    L += ["", "after the pipeline (kernel per layer; the C function names spell each layer's specialization):"]
    lib = emit_library(g, "net", core)
    for op in g.ops:
        what = "alias (no code)" if op.alias_of is not None else op.kernel.entry
        fn = lib.layer_functions.get(op.index, "")
        if fn and fn != f"net_{what}":
            what += f" -> {fn[len('net_'):]}"
        extra = []
        if op.clamp is not None:
            extra.append(f"clamp {op.clamp}")
        if op.folded_bias is not None:
            extra.append("zp folded into bias")
        if op.kernel is not None and op.kernel.scratch_bytes:
            extra.append(f"scratch {op.kernel.scratch_bytes} B")
        if op.kernel is not None and op.kernel.variant:
            extra.append("variant " + ", ".join(f"{k}={v}" for k, v in op.kernel.variant))
        if op.kernel is not None and op.kernel.ostride:
            extra.append(f"writes its concatenation slice, pixels {op.kernel.ostride} B apart")
        if op.views:
            extra.append("input" + ("s " if len(op.views) > 1 else " ") + ", ".join(map(str, op.views))
                         + " written in place by the producer" + ("s" if len(op.views) > 1 else "")
                         + ("; nothing to copy" if len(op.views) == len(op.inputs) else ""))
        L.append(f"  #{op.index:<3} {op.kind:<28} {what}" + (f"  ({', '.join(extra)})" if extra else ""))
    L.append(f"  {lib.functions} kernel functions for {lib.layers} layers with code ({lib.shared} layers reuse a "
             "function another layer created)")
    pruned = g.meta.get("pruned_channels", {})
    if pruned:
        L.append(f"  prune_channels: {len(pruned)} tensors narrowed, channels proven constant removed "
                 f"(MACs {total:,} -> {sum(op_macs(g, op) for op in g.ops):,}; --no-prune keeps them)")
    mp = g.memory_plan
    L += ["", f"memory plan: arena {mp.arena_size} bytes (align {mp.alignment}, strategy {mp.strategy})"]
    try:
        from .passes.plan_memory import timeline

        L.append(timeline(g).rstrip())
    except ImportError:  # pragma: no cover
        pass
    if dumps:
        L += ["", f"IR after {dump_after}:", dumps[0].rstrip()]
    return "\n".join(L) + "\n"


__all__ = ["compile", "inspect_model", "CompileResult", "check_name", "lower", "op_macs", "dump"]
