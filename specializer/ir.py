"""Graph IR: tensors, ops with typed attributes, a deterministic text dump and a verifier.

How it works
1. A `Graph` owns an ordered tuple of `Op`s (already in a valid execution order, as TFLite stores them) and a
   mapping tensor-id -> `Tensor`. Tensor ids are the TFLite tensor indices; passes that create tensors take ids
   from `Graph.new_tensor_id()` so ids stay unique and deterministic.
2. Everything is immutable: `Tensor`, `Op` and `Graph` are frozen dataclasses and passes build new graphs with
   `dataclasses.replace` (see `Graph.with_ops`, `Graph.with_tensors`). Constant data is a read-only numpy array.
3. Op attributes are one frozen dataclass per op kind (`specializer.ops`), never dicts. What passes derive
   (output clamp, requantization constants, chosen kernel, folded zero points) lives in typed fields of `Op`.
4. `dump(graph)` prints a stable text form (used by `--dump-after` and in tests); `verify(graph)` checks the
   structural invariants that every pass must preserve and raises `IRError` with the offending op.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

import numpy as np

DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4, "bool": 1}
NUMPY_DTYPES = {
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "float32": np.float32, "bool": np.bool_,
}
C_TYPES = {
    "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "float32": "float", "bool": "uint8_t",
}


class IRError(Exception):
    """A structural invariant of the graph is violated (a bug in a pass or the importer)."""


@dataclass(frozen=True)
class Quant:
    """Affine quantization: real = scale * (q - zero_point). Per-tensor when len(scale) == 1."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1

    @property
    def s(self) -> float:
        """The per-tensor scale (error if per-channel)."""
        if self.per_channel:
            raise IRError("per-tensor scale requested from a per-channel quantization")
        return self.scale[0]

    @property
    def zp(self) -> int:
        return self.zero_point[0]


@dataclass(frozen=True, eq=False)
class Tensor:
    """A tensor: `data` is set for constants (read-only numpy array of `dtype`), None for activations."""

    id: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Optional[Quant] = None
    data: Optional[np.ndarray] = None
    variable: bool = False  # persistent state (LSTM); reset at the start of every run, as a fresh TFLM interpreter

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_BYTES[self.dtype]

    @property
    def ctype(self) -> str:
        return C_TYPES[self.dtype]


@dataclass(frozen=True)
class Requant:
    """Base class for the per-op requantization constants computed by `passes.precompute_requant`."""


@dataclass(frozen=True)
class KernelChoice:
    """What `passes.select_kernels` picked for an op: registry entry name and its scratch requirement."""

    entry: str
    scratch_bytes: int = 0
    variant: tuple = ()  # (name, value) pairs the kernel's template arguments take (passes/choose_variants)
    inplace: tuple = ()  # input positions whose buffer this layer's kernel may overwrite with its output
    # (input position, D): the output may overlap that dying input's bytes if input offset - output offset >= D
    # (the kernel writes its output in the order it finishes reading the input: a line buffer, "chasing" reads)
    overlap: tuple = ()
    # input positions whose buffer the kernel uses as working memory (it overwrites them while it runs): only
    # offered where that buffer dies at this op (passes.liveness.dies_at; check_plan proves it)
    clobbers: tuple = ()
    # output pixel stride in elements (0: dense): the output is a slice of a CONCATENATION's output along its last
    # axis, written in place (passes/concat_views; only entries with `ostride` support take it)
    ostride: int = 0


@dataclass(frozen=True)
class Op:
    """One operator. `inputs` may contain None for absent optional inputs (TFLite index -1)."""

    kind: str
    inputs: tuple[Optional[int], ...]
    outputs: tuple[int, ...]
    attrs: Any  # a frozen dataclass from specializer.ops
    index: int  # position of the op in the source model (stable across passes, used in names and errors)
    clamp: Optional[tuple[int, int]] = None  # output clamp after activation fusion
    requant: Optional[Requant] = None
    kernel: Optional[KernelChoice] = None
    folded_bias: Optional[int] = None  # tensor id of a bias with the input zero point folded in
    alias_of: Optional[int] = None  # output is an alias (no copy) of this input tensor id
    intermediates: tuple[int, ...] = ()  # TFLite "intermediate" tensors: quantization carriers only (LSTM)
    stream: Optional[int] = None  # constant the chosen kernel reads instead of weights/bias/requant (reorder_weights)
    # CONCATENATION: input positions whose tensor is a slice of the output, written there by its producer
    # (passes/concat_views; passes.liveness.slices gives where each lies)
    views: tuple[int, ...] = ()

    def input(self, i: int) -> Optional[int]:
        return self.inputs[i] if i < len(self.inputs) else None


@dataclass(frozen=True)
class MemoryPlan:
    """Result of `passes.plan_memory`: arena byte offsets of every non-constant tensor and of op scratch buffers."""

    arena_size: int
    alignment: int
    offsets: Mapping[int, int]  # tensor id -> byte offset
    scratch_offsets: Mapping[int, int]  # op index -> byte offset of its scratch buffer
    strategy: str = ""
    inplace: Mapping[int, int] = field(default_factory=dict)  # output tid -> input tid whose buffer it reuses
    overlaps: Mapping[int, int] = field(default_factory=dict)  # output tid -> input tid it partly overlaps (chasing)


@dataclass(frozen=True)
class Graph:
    tensors: Mapping[int, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    name: str = "model"
    memory_plan: Optional[MemoryPlan] = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    # ---- queries ---------------------------------------------------------------------------------------
    def t(self, tid: Optional[int]) -> Tensor:
        if tid is None:
            raise IRError("absent optional tensor requested")
        return self.tensors[tid]

    def producer(self, tid: int) -> Optional[Op]:
        for op in self.ops:
            if tid in op.outputs:
                return op
        return None

    def consumers(self, tid: int) -> list[Op]:
        return [op for op in self.ops if tid in op.inputs]

    def new_tensor_id(self) -> int:
        return max(self.tensors, default=-1) + 1

    def op_by_index(self, index: int) -> Op:
        for op in self.ops:
            if op.index == index:
                return op
        raise KeyError(index)

    # ---- functional updates --------------------------------------------------------------------------
    def with_ops(self, ops: Iterable[Op]) -> "Graph":
        return dataclasses.replace(self, ops=tuple(ops))

    def with_tensors(self, updates: Mapping[int, Tensor], remove: Iterable[int] = ()) -> "Graph":
        tensors = dict(self.tensors)
        for tid in remove:
            tensors.pop(tid, None)
        tensors.update(updates)
        return dataclasses.replace(self, tensors=dict(sorted(tensors.items())))

    def replace(self, **kw) -> "Graph":
        return dataclasses.replace(self, **kw)

    def prune(self) -> "Graph":
        """Drop tensors no op, input or output references."""
        used = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(t for t in op.inputs if t is not None)
            used.update(op.outputs)
            used.update(op.intermediates)
            if op.folded_bias is not None:
                used.add(op.folded_bias)
            if op.stream is not None:
                used.add(op.stream)
        return dataclasses.replace(self, tensors={k: v for k, v in self.tensors.items() if k in used})


def replace_op(op: Op, **kw) -> Op:
    return dataclasses.replace(op, **kw)


# ---- text dump ---------------------------------------------------------------------------------------------
def _fmt_quant(q: Optional[Quant]) -> str:
    if q is None:
        return ""
    if q.per_channel:
        return f" q[{len(q.scale)}ch axis={q.axis} s={min(q.scale):.6g}..{max(q.scale):.6g} zp={q.zero_point[0]}]"
    return f" q[s={q.scale[0]:.9g} zp={q.zero_point[0]}]"


def _fmt_tensor(t: Tensor) -> str:
    shape = "x".join(str(d) for d in t.shape) or "scalar"
    s = f"%{t.id} {t.dtype}[{shape}]{_fmt_quant(t.quant)}"
    if t.is_const:
        digest = hashlib.sha1(np.ascontiguousarray(t.data).tobytes()).hexdigest()[:8]
        s += f" const#{digest}"
    if t.variable:
        s += " variable"
    return s


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.9g}"
    if isinstance(v, tuple) and len(v) > 8:
        return f"({', '.join(_fmt_value(x) for x in v[:4])}, ... {len(v)} items)"
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt_value(x) for x in v) + ")"
    if dataclasses.is_dataclass(v):
        inner = ", ".join(f"{f.name}={_fmt_value(getattr(v, f.name))}" for f in dataclasses.fields(v))
        return f"{type(v).__name__}({inner})"
    return repr(v)


def dump(g: Graph) -> str:
    """A deterministic textual form of the graph (stable across runs; constants shown by content hash)."""
    lines = [f"graph {g.name}"]
    lines.append("  inputs: " + ", ".join(f"%{i}" for i in g.inputs))
    lines.append("  outputs: " + ", ".join(f"%{i}" for i in g.outputs))
    lines.append("  tensors:")
    for tid in sorted(g.tensors):
        t = g.tensors[tid]
        lines.append(f"    {_fmt_tensor(t)}  \"{t.name}\"")
    lines.append("  ops:")
    for op in g.ops:
        ins = ", ".join("-" if i is None else f"%{i}" for i in op.inputs)
        outs = ", ".join(f"%{o}" for o in op.outputs)
        extra = []
        if op.clamp is not None:
            extra.append(f"clamp={op.clamp}")
        if op.folded_bias is not None:
            extra.append(f"folded_bias=%{op.folded_bias}")
        if op.alias_of is not None:
            extra.append(f"alias_of=%{op.alias_of}")
        if op.stream is not None:
            extra.append(f"stream=%{op.stream}")
        if op.views:
            extra.append(f"views={op.views}")
        if op.intermediates:
            extra.append("intermediates=" + ",".join(f"%{i}" for i in op.intermediates))
        if op.requant is not None:
            extra.append(f"requant={_fmt_value(op.requant)}")
        if op.kernel is not None:
            extra.append(f"kernel={op.kernel.entry} scratch={op.kernel.scratch_bytes}"
                         + (f" variant={_fmt_value(op.kernel.variant)}" if op.kernel.variant else "")
                         + (f" ostride={op.kernel.ostride}" if op.kernel.ostride else ""))
        attrs = _fmt_value(op.attrs) if op.attrs is not None else ""
        lines.append(f"    #{op.index} {op.kind}({ins}) -> {outs} {attrs} {' '.join(extra)}".rstrip())
    if g.memory_plan is not None:
        mp = g.memory_plan
        lines.append(f"  memory: arena={mp.arena_size} align={mp.alignment} strategy={mp.strategy}")
        for tid, off in sorted(mp.offsets.items()):
            lines.append(f"    %{tid} @ {off}")
        for idx, off in sorted(mp.scratch_offsets.items()):
            lines.append(f"    scratch #{idx} @ {off}")
    return "\n".join(lines) + "\n"


# ---- verifier ----------------------------------------------------------------------------------------------
def verify(g: Graph) -> None:
    """Check the invariants every pass preserves. Raises IRError naming the first violation."""
    defined = set(g.inputs)
    for tid in list(g.inputs) + list(g.outputs):
        if tid not in g.tensors:
            raise IRError(f"graph input/output %{tid} has no tensor")
    for tid, t in g.tensors.items():
        if t.id != tid:
            raise IRError(f"tensor %{tid} carries id {t.id}")
        if t.dtype not in DTYPE_BYTES:
            raise IRError(f"tensor %{tid} has unknown dtype {t.dtype}")
        if any((not isinstance(d, int)) or d < 0 for d in t.shape):
            raise IRError(f"tensor %{tid} has invalid shape {t.shape}")
        if t.variable:
            defined.add(tid)
        if t.is_const:
            defined.add(tid)
            if tuple(t.data.shape) != tuple(t.shape) and t.data.size != t.size:
                raise IRError(f"constant %{tid} data shape {t.data.shape} != {t.shape}")
            if t.data.dtype != np.dtype(NUMPY_DTYPES[t.dtype]):
                raise IRError(f"constant %{tid} data dtype {t.data.dtype} != {t.dtype}")
        if t.quant is not None and len(t.quant.scale) != len(t.quant.zero_point):
            raise IRError(f"tensor %{tid}: {len(t.quant.scale)} scales but {len(t.quant.zero_point)} zero points")
    seen_index = set()
    for op in g.ops:
        where = f"op #{op.index} {op.kind}"
        if op.index in seen_index:
            raise IRError(f"{where}: duplicate op index")
        seen_index.add(op.index)
        if op.attrs is not None and not dataclasses.is_dataclass(op.attrs):
            raise IRError(f"{where}: attrs must be a dataclass, got {type(op.attrs).__name__}")
        for tid in op.inputs:
            if tid is None:
                continue
            if tid not in g.tensors:
                raise IRError(f"{where}: input %{tid} does not exist")
            if tid not in defined:
                raise IRError(f"{where}: input %{tid} is used before it is produced")
        for tid in op.outputs:
            if tid not in g.tensors:
                raise IRError(f"{where}: output %{tid} does not exist")
            if tid in defined:
                raise IRError(f"{where}: output %{tid} is produced twice (or is a constant/input)")
            defined.add(tid)
        if op.folded_bias is not None and not g.tensors.get(op.folded_bias, Tensor(0, "", (), "int8")).is_const:
            raise IRError(f"{where}: folded bias %{op.folded_bias} is not a constant")
        if op.stream is not None and not g.tensors.get(op.stream, Tensor(0, "", (), "int8")).is_const:
            raise IRError(f"{where}: kernel stream %{op.stream} is not a constant")
        if op.clamp is not None and op.clamp[0] > op.clamp[1]:
            raise IRError(f"{where}: empty clamp {op.clamp}")
        if op.views and (op.kind != "CONCATENATION" or len(set(op.views)) != len(op.views)
                         or not all(0 <= p < len(op.inputs) for p in op.views)):
            raise IRError(f"{where}: views {op.views} must be distinct input positions of a CONCATENATION")
    viewed = [op.inputs[p] for op in g.ops for p in op.views]
    if len(viewed) != len(set(viewed)):
        raise IRError("a tensor is the written-in-place slice of two concatenations (they would share its bytes)")
    for tid in g.outputs:
        if tid not in defined:
            raise IRError(f"graph output %{tid} is never produced")
    if g.memory_plan is not None:
        from .passes.plan_memory import check_plan  # local import: the checker depends on liveness

        check_plan(g)
