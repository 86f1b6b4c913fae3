"""The project's own TFLite writer: build int8 models from numpy arrays (single ops and small graphs).

How it works
1. `ModelBuilder` collects tensors (activations, constants, variables) and ops with the same typed attrs the
   importer produces (`specializer.ops`); `OP_SPECS` says which options table and fields each attr maps to.
2. `build()` serialises with the generated builder functions of the `tflite` schema package and
   `flatbuffers.Builder`: buffer 0 is the empty buffer, every constant gets its own 16-byte aligned buffer,
   operator codes carry both the deprecated and the extended builtin code.
3. The result is accepted by the tflite-micro interpreter (the oracle) and by `frontend.load_model`, so tests can
   round-trip: numpy -> .tflite -> oracle and -> specializer -> C, and compare bit for bit.
4. Control flow: `subgraph(name)` returns a child builder for one more subgraph (a WHILE's condition or body, an
   IF branch); `control_op("WHILE", ins, outs, cond=c, body=b)` writes the op with its subgraph indices
   (WhileOptions, IfOptions, CallOnceOptions). All subgraphs share the model's buffers and operator codes.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Optional, Sequence

import flatbuffers
import numpy as np

from . import ops as opdefs

_DTYPE_CODES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int16": 7, "int8": 9}


@dataclass
class _T:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: Optional[tuple[float, ...]]
    zero_point: Optional[tuple[int, ...]]
    axis: int
    data: Optional[bytes]
    variable: bool


@dataclass
class _Op:
    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    attrs: object
    intermediates: tuple[int, ...] = ()


# control-flow ops: options table and its subgraph-index fields (keyword -> flatbuffer field)
_CONTROL_OPTIONS = {
    "WHILE": ("WhileOptions", (("cond", "CondSubgraphIndex"), ("body", "BodySubgraphIndex"))),
    "IF": ("IfOptions", (("then", "ThenSubgraphIndex"), ("else_", "ElseSubgraphIndex"))),
    "CALL_ONCE": ("CallOnceOptions", (("init", "InitSubgraphIndex"),)),
}


@dataclass(frozen=True)
class _ControlAttrs:
    """Options of a control-flow op: the options table name and (field, subgraph index) pairs."""

    options: str
    indices: tuple


def _tuple(v, n=None):
    if v is None:
        return None
    if np.isscalar(v):
        return (v,)
    return tuple(np.asarray(v).reshape(-1).tolist())


@dataclass
class ModelBuilder:
    description: str = "built by specializer.tflite_writer"
    tensors: list = field(default_factory=list)
    ops: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    name: str = "main"
    subgraphs: list = field(default_factory=list)  # child builders of subgraphs 1, 2, ... (root builder only)

    # ---- subgraphs and control flow -----------------------------------------------------------------------
    def subgraph(self, name: str) -> "ModelBuilder":
        """A new subgraph (index 1, 2, ... in creation order); build its tensors and ops on the returned builder."""
        child = ModelBuilder(description=self.description, name=name)
        self.subgraphs.append(child)
        return child

    def subgraph_index(self, sub: "ModelBuilder") -> int:
        for i, s in enumerate(self.subgraphs):
            if s is sub:
                return i + 1
        raise ValueError(f"writer: {sub.name!r} is not a subgraph of this model")

    def control_op(self, kind: str, inputs: Sequence[int], outputs: Sequence[int], **subgraphs) -> None:
        """WHILE (cond=, body=), IF (then=, else_=) or CALL_ONCE (init=); each a subgraph index or the child
        builder that `subgraph()` returned (children of the root builder)."""
        table, fields = _CONTROL_OPTIONS[kind]
        indices = []
        for key, fb_field in fields:
            v = subgraphs.pop(key)
            indices.append((fb_field, int(v) if isinstance(v, (int, np.integer)) else v))
        if subgraphs:
            raise TypeError(f"writer: {kind} takes no {', '.join(subgraphs)}")
        self.ops.append(_Op(kind, tuple(int(i) for i in inputs), tuple(int(o) for o in outputs),
                            _ControlAttrs(table, tuple(indices))))

    # ---- tensors -----------------------------------------------------------------------------------------
    def tensor(self, name: str, shape: Sequence[int], dtype: str = "int8", scale=None, zero_point=None,
               axis: int = 0, data: Optional[np.ndarray] = None, variable: bool = False) -> int:
        """Add a tensor; returns its index. `scale`/`zero_point` scalars or sequences (per-channel on `axis`)."""
        sc = _tuple(scale)
        zp = _tuple(zero_point)
        if sc is not None and zp is None:
            zp = (0,) * len(sc)
        if sc is not None and zp is not None and len(zp) == 1 and len(sc) > 1:
            zp = zp * len(sc)
        raw = None
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data).astype(_np_dtype(dtype)).reshape(tuple(shape)))
            raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        self.tensors.append(_T(name, tuple(int(d) for d in shape), dtype,
                               None if sc is None else tuple(float(s) for s in sc),
                               None if zp is None else tuple(int(z) for z in zp), axis, raw, variable))
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray, scale=None, zero_point=None, axis: int = 0,
              dtype: Optional[str] = None) -> int:
        data = np.asarray(data)
        dtype = dtype or {np.dtype(np.int8): "int8", np.dtype(np.int16): "int16", np.dtype(np.int32): "int32",
                          np.dtype(np.int64): "int64", np.dtype(np.float32): "float32",
                          np.dtype(np.uint8): "uint8"}[data.dtype]
        return self.tensor(name, data.shape, dtype, scale, zero_point, axis, data=data)

    def input(self, name: str, shape: Sequence[int], dtype: str = "int8", scale=None, zero_point=None) -> int:
        t = self.tensor(name, shape, dtype, scale, zero_point)
        self.inputs.append(t)
        return t

    def output(self, tid: int) -> int:
        self.outputs.append(tid)
        return tid

    def op(self, kind: str, inputs: Sequence[Optional[int]], outputs: Sequence[int], attrs=None,
           intermediates: Sequence[int] = ()) -> None:
        if kind not in opdefs.OP_SPECS:
            raise ValueError(f"writer: unknown op {kind}")
        spec = opdefs.OP_SPECS[kind]
        if attrs is None:
            attrs = spec.attrs()
        if not isinstance(attrs, spec.attrs):
            raise TypeError(f"writer: {kind} takes {spec.attrs.__name__} attrs, got {type(attrs).__name__}")
        self.ops.append(_Op(kind, tuple(-1 if i is None else int(i) for i in inputs),
                            tuple(int(o) for o in outputs), attrs, tuple(intermediates)))

    def raw_op(self, kind: str, inputs: Sequence[Optional[int]], outputs: Sequence[int]) -> None:
        """An op of any builtin kind, without options (tests use it to write ops the compiler rejects)."""
        self.ops.append(_Op(kind, tuple(-1 if i is None else int(i) for i in inputs),
                            tuple(int(o) for o in outputs), None))

    # ---- serialisation -----------------------------------------------------------------------------------
    def build(self) -> bytes:
        import tflite
        from tflite.BuiltinOperator import BuiltinOperator

        b = flatbuffers.Builder(1024)

        graphs = [self] + list(self.subgraphs)

        # buffers: 0 = empty, then one per constant (of every subgraph)
        buffer_data = [None]
        tensor_buffers = []
        for sgb in graphs:
            tb = []
            for t in sgb.tensors:
                if t.data is not None:
                    buffer_data.append(t.data)
                    tb.append(len(buffer_data) - 1)
                else:
                    tb.append(0)
            tensor_buffers.append(tb)
        buf_offsets = []
        for data in buffer_data:
            vec = None
            if data:
                b.StartVector(1, len(data), 16)
                b.head = b.head - len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                vec = b.EndVector()
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buf_offsets.append(tflite.BufferEnd(b))

        # operator codes (shared by every subgraph; written after subgraph 0's tensors)
        kinds = []
        for sgb in graphs:
            for o in sgb.ops:
                if o.kind not in kinds:
                    kinds.append(o.kind)
        oc_offsets = []

        def write_opcodes():
            for k in kinds:
                code = getattr(BuiltinOperator, k)
                tflite.OperatorCodeStart(b)
                tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
                tflite.OperatorCodeAddBuiltinCode(b, code)
                tflite.OperatorCodeAddVersion(b, 1)
                oc_offsets.append(tflite.OperatorCodeEnd(b))

        def vec_of(offsets, start):
            start(b, len(offsets))
            for off in reversed(offsets):
                b.PrependUOffsetTRelative(off)
            return b.EndVector()

        sg_offsets = [sgb._build_subgraph(b, tensor_buffers[k], kinds, vec_of, self,
                                          write_opcodes if k == 0 else None)
                      for k, sgb in enumerate(graphs)]
        sgs_v = vec_of(sg_offsets, tflite.ModelStartSubgraphsVector)
        ocs_v = vec_of(oc_offsets, tflite.ModelStartOperatorCodesVector)
        bufs_v = vec_of(buf_offsets, tflite.ModelStartBuffersVector)
        desc = b.CreateString(self.description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, ocs_v)
        tflite.ModelAddSubgraphs(b, sgs_v)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, bufs_v)
        m = tflite.ModelEnd(b)
        b.Finish(m, file_identifier=b"TFL3")
        return bytes(b.Output())

    def _build_subgraph(self, b, tensor_buffer, kinds, vec_of, root, after_tensors=None) -> int:
        import tflite
        from tflite.BuiltinOptions import BuiltinOptions

        # tensors
        t_offsets = []
        for t in self.tensors:
            name = b.CreateString(t.name)
            shape = b.CreateNumpyVector(np.asarray(t.shape, dtype=np.int32))
            q = None
            if t.scale is not None:
                sc = b.CreateNumpyVector(np.asarray(t.scale, dtype=np.float32))
                zp = b.CreateNumpyVector(np.asarray(t.zero_point, dtype=np.int64))
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, sc)
                tflite.QuantizationParametersAddZeroPoint(b, zp)
                tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
                q = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, _DTYPE_CODES[t.dtype])
            tflite.TensorAddBuffer(b, tensor_buffer[len(t_offsets)])
            tflite.TensorAddName(b, name)
            if q is not None:
                tflite.TensorAddQuantization(b, q)
            if t.variable:
                tflite.TensorAddIsVariable(b, True)
            t_offsets.append(tflite.TensorEnd(b))

        if after_tensors is not None:
            after_tensors()

        # operators
        op_offsets = []
        for o in self.ops:
            if isinstance(o.attrs, _ControlAttrs):
                opt_off, opt_type = _write_control_options(b, o.attrs, root, BuiltinOptions)
            else:
                spec = opdefs.OP_SPECS.get(o.kind)
                opt_off, opt_type = _write_options(b, spec, o.attrs, BuiltinOptions) if spec else (None, 0)
            ins = b.CreateNumpyVector(np.asarray(o.inputs, dtype=np.int32))
            outs = b.CreateNumpyVector(np.asarray(o.outputs, dtype=np.int32))
            inter = b.CreateNumpyVector(np.asarray(o.intermediates, dtype=np.int32)) if o.intermediates else None
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, kinds.index(o.kind))
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if opt_off is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opt_type)
                tflite.OperatorAddBuiltinOptions(b, opt_off)
            if inter is not None:
                tflite.OperatorAddIntermediates(b, inter)
            op_offsets.append(tflite.OperatorEnd(b))

        tensors_v = vec_of(t_offsets, tflite.SubGraphStartTensorsVector)
        ops_v = vec_of(op_offsets, tflite.SubGraphStartOperatorsVector)
        in_v = b.CreateNumpyVector(np.asarray(self.inputs, dtype=np.int32))
        out_v = b.CreateNumpyVector(np.asarray(self.outputs, dtype=np.int32))
        sg_name = b.CreateString(self.name)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_v)
        tflite.SubGraphAddInputs(b, in_v)
        tflite.SubGraphAddOutputs(b, out_v)
        tflite.SubGraphAddOperators(b, ops_v)
        tflite.SubGraphAddName(b, sg_name)
        return tflite.SubGraphEnd(b)


def _np_dtype(dtype: str):
    from .ir import NUMPY_DTYPES

    return NUMPY_DTYPES[dtype]


def _write_options(b, spec: opdefs.OpSpec, attrs, BuiltinOptions):
    if spec.options is None:
        return None, 0
    mod = importlib.import_module(f"tflite.{spec.options}")
    vectors = {}
    for attr, fb_field, kind in spec.fields:
        if kind == "ivec":
            vals = getattr(attrs, attr)
            if vals:
                vectors[fb_field] = b.CreateNumpyVector(np.asarray(vals, dtype=np.int32))
    getattr(mod, f"{spec.options}Start")(b)
    for attr, fb_field, kind in spec.fields:
        v = getattr(attrs, attr)
        if kind == "ivec":
            if fb_field in vectors:
                getattr(mod, f"{spec.options}Add{fb_field}")(b, vectors[fb_field])
            continue
        if kind == "padding":
            v = opdefs.PADDINGS.index(v)
        elif kind == "act":
            v = opdefs.ACTIVATIONS.index(v)
        elif kind == "bool":
            v = bool(v)
        elif kind == "float":
            v = float(v)
        elif kind == "dtype":
            v = {name: code for code, name in opdefs.TENSOR_TYPES.items()}[v]
        else:
            v = int(v)
        getattr(mod, f"{spec.options}Add{fb_field}")(b, v)
    off = getattr(mod, f"{spec.options}End")(b)
    return off, getattr(BuiltinOptions, spec.options)


def _write_control_options(b, attrs: _ControlAttrs, root: ModelBuilder, BuiltinOptions):
    mod = importlib.import_module(f"tflite.{attrs.options}")
    getattr(mod, f"{attrs.options}Start")(b)
    for fb_field, v in attrs.indices:
        idx = v if isinstance(v, int) else root.subgraph_index(v)
        getattr(mod, f"{attrs.options}Add{fb_field}")(b, idx)
    off = getattr(mod, f"{attrs.options}End")(b)
    return off, getattr(BuiltinOptions, attrs.options)
