"""The C emitter: a planned Graph -> <name>.h, <name>.c, <name>_weights.c (+ runtime headers).

How it works
1. Every op with code gets a `LayerContext`; its registry entry's `emit(ctx)` asks the context for pointers
   (arena offsets or weight symbols), registers flash arrays and file-scope constants, instantiates its C
   template (equal template arguments share one function) and appends its call to `<name>_run`.
2. Alias ops (RESHAPE & co. after `eliminate_reshapes`) emit nothing: their tensors share the arena bytes.
3. The header is the public contract of DESIGN.md §2: arena size/alignment macros, per-input/output size,
   scale and zero point, and the three functions. Float-I/O models get `float *` accessors; int32 outputs
   (ARG_MAX/ARG_MIN indices) an `int32_t *` accessor, int16 ones (int16x8 models) an `int16_t *` accessor,
   or `void *` when integer types mix (then <NAME>_OUTPUT<i>_IS_INT32 / _IS_INT16 mark the int32 / int16 ones).
4. Output is deterministic: the same graph gives byte-identical files (no dates, sorted iteration only).
5. `SPZ_PROFILE_MARK(i)` brackets every layer; it expands to nothing unless the benchmark harness defines
   SPZ_PROFILE (then the simulator attributes cycles per layer).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from . import registry, templates
from .ir import C_TYPES, Graph, Op, Tensor

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
RUNTIME_FILES = ("spz_runtime.h", "spz_fixedpoint.h")
C_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Bool _Complex _Imaginary""".split())


def runtime_dir() -> Path:
    """Where the runtime C headers live (source tree or installed package)."""
    try:
        from . import runtime as _rt  # installed: specializer.runtime package

        return Path(_rt.__file__).resolve().parent
    except ImportError:  # pragma: no cover
        return RUNTIME_DIR


def c_array_body(arr: np.ndarray, per_line: int = 20) -> str:
    flat = np.asarray(arr).reshape(-1)
    if flat.dtype.kind == "f":
        items = [f"{float(np.float32(v))!r}f" for v in flat]
    else:
        items = [templates.cint(int(v)) for v in flat]
    lines = []
    for i in range(0, len(items), per_line):
        lines.append("    " + ", ".join(items[i:i + per_line]) + ",")
    return "\n".join(lines)


def c_float(v: float) -> str:
    s = repr(float(np.float32(v)))
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s + "f"


@dataclass
class _Module:
    prefix: str
    weights: list = field(default_factory=list)  # (symbol, ctype, ndarray)
    weight_syms: dict = field(default_factory=dict)  # content key -> symbol
    functions: dict = field(default_factory=dict)  # (template, args key) -> (fn name, code)
    statics: list = field(default_factory=list)
    body: list = field(default_factory=list)
    layer_count: int = 0
    shared_hits: int = 0
    layer_fn: dict = field(default_factory=dict)  # op index -> the (first) C function its call uses


class LayerContext:
    """What a kernel entry's `emit` sees: one layer, and the means to write its code."""

    def __init__(self, mod: _Module, g: Graph, op: Op, entry: registry.KernelEntry, core: Any):
        self._m = mod
        self.g = g
        self.op = op
        self.entry = entry
        self.core = core
        self.prefix = mod.prefix

    # ---- tensors ---------------------------------------------------------------------------------------
    def t(self, tid: Optional[int]) -> Tensor:
        return self.g.t(tid)

    def inp(self, pos: int) -> Optional[Tensor]:
        tid = self.op.input(pos)
        return None if tid is None else self.g.t(tid)

    def out(self, pos: int = 0) -> Tensor:
        return self.g.t(self.op.outputs[pos])

    def ptr(self, tid: int, ctype: Optional[str] = None) -> str:
        """C expression pointing at the tensor's data (arena offset, or flash symbol for constants)."""
        t = self.g.t(tid)
        ct = ctype or t.ctype
        if t.is_const:
            return self.weights(t.data, ct, f"t{tid}")
        off = self.g.memory_plan.offsets[tid]
        return f"(({ct} *)(arena + {off}))"

    def scratch(self, ctype: str = "uint8_t") -> str:
        off = self.g.memory_plan.scratch_offsets[self.op.index]
        return f"(({ctype} *)(arena + {off}))"

    # ---- file-level code -------------------------------------------------------------------------------
    def sym(self, suffix: str) -> str:
        return f"{self.prefix}_l{self.op.index}_{suffix}"

    def weights(self, arr: np.ndarray, ctype: Optional[str] = None, hint: Optional[str] = None) -> str:
        """Register a flash array (deduplicated by content and type); returns its symbol."""
        arr = np.ascontiguousarray(arr)
        ctype = ctype or C_TYPES[{np.dtype(np.int8): "int8", np.dtype(np.int16): "int16",
                                  np.dtype(np.int32): "int32", np.dtype(np.uint8): "uint8",
                                  np.dtype(np.float32): "float32", np.dtype(np.int64): "int64"}[arr.dtype]]
        key = (ctype, arr.shape, hashlib.sha256(arr.tobytes()).hexdigest())
        if key in self._m.weight_syms:
            return self._m.weight_syms[key]
        sym = f"{self.prefix}_{hint}" if hint else self.sym(f"c{len(self._m.weights)}")
        while any(s == sym for s, _, _ in self._m.weights):
            sym += "_"
        self._m.weights.append((sym, ctype, arr))
        self._m.weight_syms[key] = sym
        return sym

    def static(self, code: str) -> None:
        """A file-scope declaration in <name>.c (per-layer parameter structs, small tables)."""
        self._m.statics.append(code)

    def call(self, code: str) -> None:
        """A statement in <name>_run for this layer."""
        self._m.body.append("    " + code.replace("\n", "\n    "))

    def fn(self, template: Optional[str] = None, variant: str = "", **args: Any) -> str:
        """Instantiate the kernel template (default: the entry's) with `args`; returns the C function name.

        Layers with equal (template, args) share one function. `variant` names the specialization in the
        function name (naming grammar: <entry>_<variant>, e.g. conv2d_s8_k3x3_s1 + __dsp suffixes).
        """
        tpl = template or self.entry.template
        key = (tpl, tuple(sorted((k, repr(v)) for k, v in args.items())))
        if key in self._m.functions:
            self._m.shared_hits += 1
            self._m.layer_fn.setdefault(self.op.index, self._m.functions[key][0])
            return self._m.functions[key][0]
        base = f"{self.prefix}_{self.entry.name}" + (f"_{variant}" if variant else "")
        name = base
        n = 1
        while any(v[0] == name for v in self._m.functions.values()):
            n += 1
            name = f"{base}_{n}"
        path = _template_path(tpl)
        code = templates.render(path, {"FN": name, "PREFIX": self.prefix, **args})
        self._m.functions[key] = (name, code)
        self._m.layer_fn.setdefault(self.op.index, name)
        return name


def _template_path(tpl: str) -> Path:
    p = Path(tpl)
    if p.is_absolute():
        return p
    return KERNEL_DIR / tpl


@dataclass(frozen=True)
class EmittedLibrary:
    files: Mapping[str, str]  # file name -> content
    arena_size: int
    functions: int
    layers: int
    shared: int
    layer_functions: Mapping[int, str] = field(default_factory=dict)  # op index -> C function name


def layer_summary(g: Graph, op: Op) -> str:
    ins = " ".join("x".join(map(str, g.t(i).shape)) for i in op.inputs if i is not None and not g.t(i).is_const)
    outs = " ".join("x".join(map(str, g.t(o).shape)) for o in op.outputs)
    return f"#{op.index} {op.kind} {ins} -> {outs}"


def emit_library(g: Graph, prefix: str, core: Any = None, *,
                 entry_lookup: Optional[Callable[[str], registry.KernelEntry]] = None) -> EmittedLibrary:
    """Generate the C sources of the library for a fully lowered and planned graph.

    `entry_lookup` resolves `op.kernel.entry` names (default: the kernel registry); a caller with entries of its
    own outside the registry (e.g. `specializer.cmsis_nn`, layers that call CMSIS-NN) passes its resolver."""
    assert g.memory_plan is not None, "emit_library needs a memory plan"
    lookup = entry_lookup or registry.entry_by_name
    mod = _Module(prefix=prefix)
    for op in g.ops:
        if op.alias_of is not None:
            mod.body.append(f"    /* {layer_summary(g, op)}: alias, no code */")
            continue
        entry = lookup(op.kernel.entry)
        mod.body.append(f"    /* {layer_summary(g, op)} [{entry.name}] */")
        mod.body.append(f"    SPZ_PROFILE_MARK({op.index}u);")
        entry.emit(LayerContext(mod, g, op, entry, core))
        mod.layer_count += 1
    mod.body.append("    SPZ_PROFILE_MARK(0xFFFFFFFFu);")

    up = prefix.upper()
    files = {
        f"{prefix}.h": _header(g, prefix, up),
        f"{prefix}.c": _source(g, mod, prefix, up),
        f"{prefix}_weights.c": _weights(mod, prefix),
    }
    rdir = runtime_dir()
    for rf in RUNTIME_FILES:
        files[rf] = (rdir / rf).read_text()
    return EmittedLibrary(files=files, arena_size=g.memory_plan.arena_size, functions=len(mod.functions),
                          layers=mod.layer_count, shared=mod.shared_hits, layer_functions=dict(mod.layer_fn))


def io_ctype(g: Graph, tids) -> str:
    """The C type of the input (or output) accessor: int8_t, int16_t (int16x8 models), float, int32_t
    (ARG_MAX/ARG_MIN outputs), or void when integer types mix (<NAME>_OUTPUT<i>_IS_INT32 / _IS_INT16 say which
    are which)."""
    kinds = {g.t(t).dtype for t in tids}
    if kinds == {"float32"}:
        return "float"
    if kinds <= {"int8"}:
        return "int8_t"
    if kinds == {"int16"}:
        return "int16_t"
    if kinds == {"int32"}:
        return "int32_t"
    if len(kinds) > 1 and kinds <= {"int8", "int16", "int32"}:
        return "void"
    from .errors import UnsupportedTypeError

    raise UnsupportedTypeError("model inputs (or outputs) mix types " + ", ".join(sorted(kinds))
                               + "; all must be integer (int8, int16, int32 indices), or all float32")


def _header(g: Graph, prefix: str, up: str) -> str:
    mp = g.memory_plan
    in_t = io_ctype(g, g.inputs)
    out_t = io_ctype(g, g.outputs)
    L = [f"/* {prefix}.h: generated by specializer. Do not edit. */",
         f"#ifndef {up}_H_", f"#define {up}_H_", "", "#include <stdint.h>", "",
         "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
         f"#define {up}_ARENA_SIZE {mp.arena_size}u",
         f"#define {up}_ARENA_ALIGN {mp.alignment}",
         f"#define {up}_NUM_INPUTS {len(g.inputs)}",
         f"#define {up}_NUM_OUTPUTS {len(g.outputs)}"]
    for kind, tids in (("INPUT", g.inputs), ("OUTPUT", g.outputs)):
        L.append(f"#define {up}_{kind}_SIZES {{" + ", ".join(f"{g.t(t).nbytes}u" for t in tids) + "}"
                 f" /* bytes of every {kind.lower()}, an initializer */")
        for i, tid in enumerate(tids):
            t = g.t(tid)
            L.append(f"#define {up}_{kind}{i}_SIZE {t.nbytes}u")
            L.append(f"#define {up}_{kind}{i}_ELEMENTS {t.size}u")
            if t.quant is not None and not t.quant.per_channel:
                L.append(f"#define {up}_{kind}{i}_SCALE {c_float(t.quant.scale[0])}")
                L.append(f"#define {up}_{kind}{i}_ZERO_POINT {t.quant.zero_point[0]}")
            if t.dtype == "float32":
                L.append(f"#define {up}_{kind}{i}_IS_FLOAT 1")
            if t.dtype == "int32":
                L.append(f"#define {up}_{kind}{i}_IS_INT32 1 /* int32_t indices (ARG_MAX/ARG_MIN, GATHER) */")
            if t.dtype == "int16":
                L.append(f"#define {up}_{kind}{i}_IS_INT16 1 /* int16_t (int16x8) */")
    L += ["",
          "/* `arena` is caller-owned, " + f"{up}_ARENA_SIZE bytes, aligned to {up}_ARENA_ALIGN. Inputs and outputs",
          " * live inside it; a run may overwrite the inputs (their bytes are reused once read): write them",
          " * before every run. Nothing else is global: two arenas are two independent instances. */",
          f"{in_t} *{prefix}_input(uint8_t *arena, int index);",
          f"{out_t} *{prefix}_output(uint8_t *arena, int index);",
          f"int {prefix}_run(uint8_t *arena); /* 0 on success; 1: a run-time GATHER index outside its axis */", "",
          f"/* {up}_HAS_STATE 1: the model carries state from one run to the next (LSTM/variable tensors, as",
          " * TFLite Micro keeps them across invoke() calls): call " + f"{prefix}_reset(arena) once before the first",
          " * run and whenever the stream restarts. With 0 it does nothing. */",
          f"#define {up}_HAS_STATE {1 if any(t.variable for t in g.tensors.values()) else 0}",
          f"void {prefix}_reset(uint8_t *arena);", "",
          "#ifdef __cplusplus", "}", "#endif", f"#endif /* {up}_H_ */", ""]
    return "\n".join(L)


def _source(g: Graph, mod: _Module, prefix: str, up: str) -> str:
    in_t = io_ctype(g, g.inputs)
    out_t = io_ctype(g, g.outputs)
    L = [f"/* {prefix}.c: generated by specializer. Do not edit. */",
         f'#include "{prefix}.h"', '#include "spz_runtime.h"', "",
         "#ifdef SPZ_PROFILE", '#include "spz_profile.h"', "#else", "#define SPZ_PROFILE_MARK(id) ((void)0)",
         "#endif", ""]
    if mod.weights:
        L.append("/* constants in flash (" + f"{prefix}_weights.c) */")
        for sym, ctype, arr in mod.weights:
            L.append(f"extern const {ctype} {sym}[{max(arr.size, 1)}];")
        L.append("")
    for (tpl, _), (name, code) in mod.functions.items():
        L.append(f"/* template {Path(tpl).name} -> {name} */")
        L.append(code.rstrip("\n"))
        L.append("")
    for s in mod.statics:
        L.append(s)
    if mod.statics:
        L.append("")
    for kind, tids, ct in (("input", g.inputs, in_t), ("output", g.outputs, out_t)):
        L.append(f"{ct} *{prefix}_{kind}(uint8_t *arena, int index) {{")
        L.append("    switch (index) {")
        for i, tid in enumerate(tids):
            L.append(f"    case {i}: return ({ct} *)(arena + {g.memory_plan.offsets[tid]});")
        L.append("    default: return (" + ct + " *)0;")
        L.append("    }")
        L.append("}")
        L.append("")
    L.append(f"void {prefix}_reset(uint8_t *arena) {{")
    L.append("    (void)arena; /* a model without state */")
    for tid in sorted(t for t, tt in g.tensors.items() if tt.variable):
        t = g.t(tid)
        fill = t.quant.zero_point[0] if (t.dtype == "int8" and t.quant is not None) else 0
        L.append(f"    memset(arena + {g.memory_plan.offsets[tid]}, {fill & 0xFF}, {t.nbytes}u);"
                 f" /* state '{t.name}' starts fresh */")
    L += ["}", ""]
    L.append(f"int {prefix}_run(uint8_t *arena) {{")
    L.append("    (void)arena; /* unused when every layer is an alias */")
    L += mod.body
    L += ["    return 0;", "}", ""]
    return "\n".join(L)


def _weights(mod: _Module, prefix: str) -> str:
    L = [f"/* {prefix}_weights.c: generated by specializer. Constant data, placed in flash. */",
         "#include <stdint.h>", '#include "spz_runtime.h"', ""]
    for sym, ctype, arr in mod.weights:
        n = max(arr.size, 1)
        L.append(f"extern const {ctype} {sym}[{n}];")
        L.append(f"SPZ_ALIGN(4) const {ctype} {sym}[{n}] = {{")
        L.append(c_array_body(arr) if arr.size else "    0,")
        L.append("};")
        L.append("")
    return "\n".join(L)
