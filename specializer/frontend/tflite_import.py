"""TFLite flatbuffer -> Graph, using the `tflite` schema package (no hand-written parser).

How it works
1. `load_model(path_or_bytes)` checks the file identifier and size, then reads subgraph 0 through the generated
   schema accessors. Any exception while walking the flatbuffer becomes a one-line `ModelFormatError`. The other
   subgraphs are read only when a control-flow op names them: a WHILE with a compile-time trip count is unrolled
   into subgraph 0 by `frontend.control_flow`; other control flow is a `ControlFlowError`.
2. Every operator code is resolved to its builtin name; custom and unsupported ops raise `UnsupportedOpError`
   with the op's index and the supported list. Builtin options are decoded into the typed attrs of
   `specializer.ops` through the `OP_SPECS` table (the writer uses the same table).
3. Tensors become `ir.Tensor`s: constants carry read-only numpy data (little-endian), quantization becomes `Quant`.
4. `check_types(graph)` enforces the int8 contract: int8 activations; float32 only at QUANTIZE inputs /
   DEQUANTIZE outputs; int16 only on LSTM and SVDF state, the int16x8 ops (INT16_OPS; for those in
   INT16_POSITIONS only at the listed input/output positions) and the 16x8 LSTM's input, hidden state and
   output (LSTM_INT16_POSITIONS); int32 biases and
   ARG_MAX/ARG_MIN indices (int64 indices or axes are refused as TFLM refuses them); float and hybrid SVDF are
   named as such; anything else is an `UnsupportedTypeError`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from .. import ops as opdefs
from ..errors import ModelFormatError, ShapeError, UnsupportedOpError, UnsupportedTypeError
from ..ir import NUMPY_DTYPES, Graph, IRError, Op, Quant, Tensor, verify

_TFLITE_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
                  7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
                  13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4"}


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _decode_options(kind: str, op_fb) -> object:
    spec = opdefs.OP_SPECS[kind]
    if not spec.fields:
        return spec.attrs()
    import importlib

    mod = importlib.import_module(f"tflite.{spec.options}")
    cls = getattr(mod, spec.options)
    table = op_fb.BuiltinOptions()
    if table is None:
        return spec.attrs()
    opt = cls()
    opt.Init(table.Bytes, table.Pos)
    values = {}
    for attr, fb_field, kind_ in spec.fields:
        if kind_ == "ivec":
            arr = getattr(opt, fb_field + "AsNumpy")()
            values[attr] = tuple(int(x) for x in arr) if not isinstance(arr, int) else ()
            continue
        v = getattr(opt, fb_field)()
        if kind_ == "padding":
            v = opdefs.PADDINGS[v]
        elif kind_ == "act":
            v = opdefs.ACTIVATIONS[v]
        elif kind_ == "bool":
            v = bool(v)
        elif kind_ == "float":
            v = float(v)
        elif kind_ == "dtype":
            v = opdefs.TENSOR_TYPES.get(int(v), f"type{int(v)}")
        else:
            v = int(v)
        values[attr] = v
    return spec.attrs(**values)


def _read_bytes(src: Union[str, os.PathLike, bytes]) -> tuple[bytes, str]:
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), "<bytes>"
    p = Path(src)
    try:
        return p.read_bytes(), str(p)
    except FileNotFoundError:
        raise ModelFormatError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{p}: is a directory, expected a .tflite file") from None
    except OSError as e:
        raise ModelFormatError(f"{p}: cannot read ({e.strerror})") from None


def load_model(src: Union[str, os.PathLike, bytes], name: str = "model") -> Graph:
    """Parse a .tflite file (path or bytes) into a verified Graph. Raises SpecializerError subclasses."""
    buf, label = _read_bytes(src)
    if len(buf) < 8:
        raise ModelFormatError(f"{label}: not a TFLite model ({len(buf)} bytes; too short for a flatbuffer)")
    if buf[4:8] != b"TFL3":
        raise ModelFormatError(f"{label}: not a TFLite model (file identifier {buf[4:8]!r}, expected b'TFL3')")
    try:
        graph = _parse(buf, label, name)
    except (ModelFormatError, UnsupportedOpError, UnsupportedTypeError, ShapeError):
        raise
    except Exception as e:  # anything the flatbuffer accessors throw on a damaged file
        raise ModelFormatError(f"{label}: malformed or truncated TFLite flatbuffer ({type(e).__name__}: {e})"
                               ) from None
    check_types(graph, label)
    try:
        verify(graph)
    except IRError as e:  # a well-formed flatbuffer whose graph is inconsistent (cycles, dangling tensors, ...)
        raise ModelFormatError(f"{label}: inconsistent TFLite model ({e})") from None
    return graph


# Inputs an operator cannot run without (positions); the others are optional (absent = index -1).
_REQUIRED_INPUTS = {"CONV_2D": (0, 1), "DEPTHWISE_CONV_2D": (0, 1), "FULLY_CONNECTED": (0, 1),
                    "ADD": (0, 1), "SUB": (0, 1), "MUL": (0, 1), "EXPAND_DIMS": (0, 1), "PAD": (0, 1),
                    "PADV2": (0, 1), "RESIZE_NEAREST_NEIGHBOR": (0, 1), "MEAN": (0, 1), "SUM": (0, 1), "REDUCE_MAX": (0, 1), "PRELU": (0, 1), "GATHER": (0, 1),
                    "SPACE_TO_BATCH_ND": (0, 1, 2), "BATCH_TO_SPACE_ND": (0, 1, 2), "TRANSPOSE": (0, 1),
                    "STRIDED_SLICE": (0, 1, 2, 3), "SPLIT": (0, 1), "SPLIT_V": (0, 1, 2), "MAXIMUM": (0, 1),
                    "MINIMUM": (0, 1), "SLICE": (0, 1, 2),
                    "TRANSPOSE_CONV": (0, 1, 2), "BATCH_MATMUL": (0, 1), "SQUARED_DIFFERENCE": (0, 1),
                    "RESIZE_BILINEAR": (0, 1), "ARG_MAX": (0, 1), "ARG_MIN": (0, 1),
                    "UNIDIRECTIONAL_SEQUENCE_LSTM": (0, 2, 3, 4, 6, 7, 8, 13, 14, 15, 18, 19),
                    "SVDF": (0, 1, 2, 4)}


_POSITIVE_ATTRS = ("stride_h", "stride_w", "dilation_h", "dilation_w", "filter_h", "filter_w", "depth_multiplier",
                   "block_size")


def _check_attrs(where: str, kind: str, attrs) -> None:
    """Strides, dilations, filter sizes and depth multipliers between 1 and 65535 (TFLite Micro's int32
    arithmetic on them overflows long before a microcontroller could run such a layer)."""
    for name in _POSITIVE_ATTRS:
        v = getattr(attrs, name, None)
        if v is not None and not 1 <= v <= 0xFFFF:
            raise ShapeError(f"{where} has {name} = {v}; it must be between 1 and 65535")


def _check_quant(label: str, i: int, tname: str, scales, zps) -> None:
    """Scales finite and positive, zero points that fit an int32 (TFLite's own requirement)."""
    for s in scales:
        if not (s > 0.0 and s < float("inf")):
            raise ModelFormatError(f"{label}: tensor '{tname}' (#{i}) has quantization scale {s}; scales must be "
                                   "finite and positive")
    for z in zps:
        if not -(1 << 31) <= z < (1 << 31):
            raise ModelFormatError(f"{label}: tensor '{tname}' (#{i}) has zero point {z} outside int32")


def _parse(buf: bytes, label: str, name: str) -> Graph:
    import tflite

    model = tflite.Model.GetRootAsModel(buf, 0)
    root = int.from_bytes(buf[0:4], "little")
    if root >= len(buf):
        raise ModelFormatError(f"{label}: malformed or truncated TFLite flatbuffer (root offset beyond file end)")
    if model.SubgraphsLength() < 1:
        raise ModelFormatError(f"{label}: the model has no subgraph")
    sg = model.Subgraphs(0)
    names = _builtin_names()
    opcodes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == 32:  # CUSTOM
            cc = oc.CustomCode()
            opcodes.append("CUSTOM(" + (cc.decode() if cc else "?") + ")")
        else:
            opcodes.append(names.get(code, f"BUILTIN_{code}"))

    tensors = _read_tensors(model, buf, label, sg)
    from .control_flow import Inliner

    inl = Inliner(model, buf, label, opcodes, tensors, sg.OperatorsLength())
    for i in range(sg.OperatorsLength()):
        inl.main_op(sg, i)
    ops = inl.ops
    tensors = inl.tensors

    gin = tuple(int(t) for t in sg.InputsAsNumpy()) if not isinstance(sg.InputsAsNumpy(), int) else ()
    gout = tuple(int(t) for t in sg.OutputsAsNumpy()) if not isinstance(sg.OutputsAsNumpy(), int) else ()
    gout = inl.graph_outputs(gout, gin)
    if not gin or not gout:
        raise ModelFormatError(f"{label}: the model declares no inputs or no outputs")
    produced = {t for op in ops for t in op.outputs}
    for role, tids in (("input", gin), ("output", gout)):
        for t in tids:
            if t not in tensors:
                raise ModelFormatError(f"{label}: the model's {role} is tensor {t}, the model has {len(tensors)}")
            if tensors[t].data is not None:
                raise ModelFormatError(f"{label}: the model's {role} '{tensors[t].name}' (#{t}) is a constant")
            if role == "input" and t in produced:
                raise ModelFormatError(f"{label}: the model's input '{tensors[t].name}' (#{t}) is computed by an op")
    g = Graph(tensors=tensors, ops=tuple(ops), inputs=gin, outputs=gout, name=name,
              meta={"source": label, "num_subgraphs": model.SubgraphsLength(),
                    **({"unrolled_loops": tuple(inl.loops)} if inl.loops else {})})
    return g.prune()


def _read_tensors(model, buf: bytes, label: str, sg) -> dict[int, Tensor]:
    """The tensors of one subgraph (constants with their data, quantization checked)."""
    tensors: dict[int, Tensor] = {}
    for i in range(sg.TensorsLength()):
        tfb = sg.Tensors(i)
        dtype = _TFLITE_DTYPES.get(tfb.Type(), f"type{tfb.Type()}")
        shp = tfb.ShapeAsNumpy()
        shape = tuple(int(d) for d in shp) if not isinstance(shp, int) else ()
        tname = tfb.Name().decode("utf-8", "replace") if tfb.Name() else f"t{i}"
        if any(d < 0 for d in shape):
            raise ShapeError(f"{label}: tensor '{tname}' (#{i}) has a dynamic shape {list(shape)}; "
                             "only static shapes are supported")
        elems = 1
        for d in shape:
            elems *= d
        if len(shape) > 8 or elems >= (1 << 31) // 8:
            raise ShapeError(f"{label}: tensor '{tname}' (#{i}) has shape {list(shape)}: too large for a "
                             "microcontroller (at most 8 dimensions and 2^28 elements)")
        q = None
        qfb = tfb.Quantization()
        if qfb is not None:
            sc = qfb.ScaleAsNumpy()
            zp = qfb.ZeroPointAsNumpy()
            if not isinstance(sc, int) and len(sc) > 0:
                zps = tuple(int(z) for z in zp) if not isinstance(zp, int) else (0,) * len(sc)
                if len(zps) == 1 and len(sc) > 1:
                    zps = zps * len(sc)
                qdim = int(qfb.QuantizedDimension())
                _check_quant(label, i, tname, [float(s) for s in sc], zps)
                if len(zps) != len(sc):
                    raise ModelFormatError(f"{label}: tensor '{tname}' (#{i}) has {len(sc)} quantization scales "
                                           f"but {len(zps)} zero points")
                if len(sc) > 1 and not (0 <= qdim < len(shape) and shape[qdim] == len(sc)):
                    raise ModelFormatError(f"{label}: tensor '{tname}' (#{i}) has {len(sc)} per-channel scales on "
                                           f"dimension {qdim} of its shape {list(shape)}")
                q = Quant(tuple(float(s) for s in sc), zps, qdim)
        data = None
        bidx = tfb.Buffer()
        if bidx > 0 and bidx < model.BuffersLength():
            b = model.Buffers(bidx)
            raw = None
            if b.Offset() > 1:
                off, size = int(b.Offset()), int(b.Size())
                if off + size > len(buf):
                    raise ModelFormatError(f"{label}: malformed or truncated TFLite flatbuffer "
                                           f"(buffer {bidx} lies beyond the end of the file)")
                raw = np.frombuffer(buf, dtype=np.uint8, count=size, offset=off)
            else:
                d = b.DataAsNumpy()
                if not isinstance(d, int) and len(d) > 0:
                    raw = d
            if raw is not None:
                if dtype not in NUMPY_DTYPES:
                    raise UnsupportedTypeError(f"{label}: constant tensor '{tname}' (#{i}) has type {dtype}; "
                                               "supported constant types: int8, int16, int32, int64, float32")
                npdt = np.dtype(NUMPY_DTYPES[dtype]).newbyteorder("<")
                n = int(np.prod(shape)) if shape else 1
                if raw.nbytes != n * npdt.itemsize:
                    raise ModelFormatError(f"{label}: constant tensor '{tname}' (#{i}) holds {raw.nbytes} bytes, "
                                           f"its shape {list(shape)} needs {n * npdt.itemsize}")
                arr = np.frombuffer(raw.tobytes(), dtype=npdt).astype(NUMPY_DTYPES[dtype]).reshape(shape)
                arr.setflags(write=False)
                data = arr
        tensors[i] = Tensor(id=i, name=tname, shape=shape, dtype=dtype, quant=q, data=data, variable=tfb.IsVariable())

    return tensors


def _op_record(label: str, where: str, sg, i: int, opcodes: list):
    """(kind, inputs, outputs, intermediates, flatbuffer op) of op `i` of subgraph `sg`; checks its operator code."""
    ofb = sg.Operators(i)
    idx = ofb.OpcodeIndex()
    if idx >= len(opcodes):
        raise ModelFormatError(f"{where} refers to operator code {idx}, the model has {len(opcodes)}")
    kind = opcodes[idx]
    ins = ofb.InputsAsNumpy()
    outs = ofb.OutputsAsNumpy()
    ins = tuple(None if int(t) < 0 else int(t) for t in ins) if not isinstance(ins, int) else ()
    outs = tuple(int(t) for t in outs) if not isinstance(outs, int) else ()
    inter = ofb.IntermediatesAsNumpy()
    inter = tuple(int(t) for t in inter) if not isinstance(inter, int) else ()
    return kind, ins, outs, inter, ofb


def _check_refs(where: str, ins, outs, inter, tensors) -> None:
    for t in tuple(ins) + tuple(outs) + tuple(inter):
        if t is not None and t not in tensors:
            raise ModelFormatError(f"{where} refers to tensor {t}, the model has {len(tensors)}")


def _op_attrs(where: str, kind: str, ins, outs, inter, ofb, tensors):
    """Validate one (non control-flow) op against its subgraph's tensors and decode its options."""
    if kind not in opdefs.OP_SPECS:
        raise UnsupportedOpError(f"{where} is not supported; supported ops: " + ", ".join(opdefs.SUPPORTED_OPS))
    _check_refs(where, ins, outs, inter, tensors)
    for pos in _REQUIRED_INPUTS.get(kind, (0,)):
        if pos >= len(ins) or ins[pos] is None:
            raise ModelFormatError(f"{where} lacks its required input {pos} (it has {len(ins)} inputs)")
    if not outs:
        raise ModelFormatError(f"{where} has no output")
    for t in ins + outs:  # (intermediates of LSTM may be empty placeholders)
        if t is not None and 0 in tensors[t].shape:
            raise ShapeError(f"{where}: tensor '{tensors[t].name}' (#{t}) has an empty shape "
                             f"{list(tensors[t].shape)} (a dimension of 0)")
    attrs = _decode_options(kind, ofb)
    _check_attrs(where, kind, attrs)
    return attrs


def check_types(g: Graph, label: str = "model") -> None:
    """Enforce the int8 contract (see module docstring)."""
    for op in g.ops:
        where = f"{label}: op #{op.index} {op.kind}"
        if op.kind == "SVDF":
            _check_svdf_types(g, op, where)
        for pos, tid in enumerate(op.inputs):
            if tid is None:
                continue
            t = g.tensors[tid]
            _check_tensor(g, op, t, where, "input", pos)
        for pos, tid in enumerate(op.outputs):
            _check_tensor(g, op, g.tensors[tid], where, "output", pos)


def _check_svdf_types(g: Graph, op: Op, where: str) -> None:
    """SVDF: TFLite Micro runs a float SVDF (float32 everywhere) and an integer one (int8 input, feature weights
    and output, int16 or int8 time weights and state, int32 bias); it refuses the hybrid form (float input,
    int8 weights: "weights_feature->type != kTfLiteFloat32"). Only the integer SVDF is supported here."""
    def dt(pos):
        tid = op.input(pos)
        return None if tid is None else g.tensors[tid].dtype

    x, wf, y = dt(0), dt(1), g.tensors[op.outputs[0]].dtype
    if x == "float32" or y == "float32" or wf == "float32":
        hybrid = x == "float32" and wf == "int8"
        kind = "hybrid (float32 input, int8 weights)" if hybrid else "float32"
        tflm = (" (TFLite Micro refuses it too: \"weights_feature->type != kTfLiteFloat32\")" if hybrid else "")
        raise UnsupportedTypeError(f"{where}: {kind} SVDF is not supported{tflm}; only the integer SVDF is (int8 "
                                   "input, feature weights and output, int16 or int8 time weights and state, int32 "
                                   "bias)")
    st = op.input(4)
    if st is not None and len(op.inputs) == 5 and not g.tensors[st].variable and not g.tensors[st].is_const:
        raise ModelFormatError(f"{where}: the state (input 4) is not a variable tensor; TFLite Micro refuses it "
                               "(\"activation_state->is_variable != true\")")


# ops whose int16 activations (TFLite's int16x8 mode) have kernels
# (role, position) pairs where an op of INT16_POSITIONS takes an int16 activation (the ops not listed there take
# one at any position; their kernels refuse what they cannot run)
INT16_POSITIONS = {
    "CONV_2D": (("input", 0), ("output", 0)),
    "DEPTHWISE_CONV_2D": (("input", 0), ("output", 0)),
    "AVERAGE_POOL_2D": (("input", 0), ("output", 0)),
    "MAX_POOL_2D": (("input", 0), ("output", 0)),
    "MUL": (("input", 0), ("input", 1), ("output", 0)),
    "LOGISTIC": (("input", 0), ("output", 0)),
    "TANH": (("input", 0), ("output", 0)),
    "SOFTMAX": (("input", 0), ("output", 0)),
}
# the non-constant positions where UNIDIRECTIONAL_SEQUENCE_LSTM takes int16: the cell state (every integer LSTM),
# and for TFLM's 16x8 LSTM also the input, the hidden state and the output
LSTM_INT16_POSITIONS = (("input", 0), ("input", 18), ("input", 19), ("output", 0))
INT16_OPS = ("QUANTIZE", "DEQUANTIZE", "FULLY_CONNECTED", "ADD", "SUB", "RESHAPE", "SQUEEZE", "EXPAND_DIMS",
             "TRANSPOSE", "STRIDED_SLICE", "SPLIT", "SPLIT_V",
             "CONCATENATION", *INT16_POSITIONS)


def _check_tensor(g: Graph, op: Op, t: Tensor, where: str, role: str, pos: int) -> None:
    desc = f"{role} {pos} '{t.name}' (#{t.id})"
    if t.dtype == "int8" and t.quant is not None and not all(-128 <= z <= 127 for z in t.quant.zero_point):
        raise UnsupportedTypeError(f"{where}: {desc} is int8 with zero point(s) outside -128..127")
    if t.is_const:
        if t.dtype not in ("int8", "int16", "int32", "int64", "float32"):
            raise UnsupportedTypeError(f"{where}: constant {desc} has type {t.dtype}")
        if op.kind in ("ARG_MAX", "ARG_MIN") and pos == 1 and t.dtype != "int32":  # TFLM's arg_min_max.cc Eval
            raise UnsupportedTypeError(f"{where}: {desc} (the axis) is {t.dtype}; TFLite Micro's {op.kind} takes an "
                                       f"int32 axis only (\"Only int32_t are supported currently, got "
                                       f"{t.dtype.upper()}\")")
        if t.dtype == "float32" and op.kind not in ("QUANTIZE", "DEQUANTIZE"):
            raise UnsupportedTypeError(f"{where}: constant {desc} is float32; only int8 models are supported "
                                       "(float32 only at QUANTIZE/DEQUANTIZE edges)")
        return
    if t.dtype == "int8":
        if t.quant is None:
            raise UnsupportedTypeError(f"{where}: {desc} is int8 without quantization parameters")
        return
    if t.dtype == "float32" and ((op.kind == "QUANTIZE" and role == "input")
                                 or (op.kind == "DEQUANTIZE" and role == "output")):
        return
    if t.dtype == "int16" and op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        if (role, pos) in LSTM_INT16_POSITIONS:  # the cell state (int8 LSTMs too), and the 16x8 LSTM's activations
            return
        raise UnsupportedTypeError(f"{where}: {desc} is int16; UNIDIRECTIONAL_SEQUENCE_LSTM takes int16 only as "
                                   "input 0, the hidden and cell states (inputs 18, 19) and output 0")
    if t.dtype == "int16" and op.kind in INT16_OPS:  # int16x8: 16-bit activations
        if t.quant is None:
            raise UnsupportedTypeError(f"{where}: {desc} is int16 without quantization parameters")
        allowed = INT16_POSITIONS.get(op.kind)
        if allowed is not None and (role, pos) not in allowed:
            raise UnsupportedTypeError(f"{where}: {desc} is int16; int16x8 {op.kind} takes int16 only as "
                                       + " and ".join(f"{r} {p}" for r, p in allowed))
        return
    if t.dtype == "int16" and op.kind == "SVDF" and role == "input" and pos == 4:  # the state
        return
    if t.dtype == "int32" and op.kind in ("RESHAPE",) and role == "input" and pos == 1:
        return
    if t.dtype == "int32" and op.kind == "GATHER" and role == "input" and pos == 1:  # indices at run time
        return
    if op.kind in ("ARG_MAX", "ARG_MIN") and role == "output":
        if t.dtype == "int32":
            return
        if t.dtype == "int64":  # TFLM's arg_min_max.cc Eval
            raise UnsupportedTypeError(f"{where}: {desc} is int64; TFLite Micro's {op.kind} writes int32 indices "
                                       "only (it fails with \"Only int32_t are supported currently, got INT64\")")
    raise UnsupportedTypeError(
        f"{where}: {desc} is {t.dtype}; only int8 activations are supported "
        "(float32 only at QUANTIZE inputs / DEQUANTIZE outputs, int16 only for LSTM and SVDF state and the "
        f"int16x8 ops {', '.join(INT16_OPS)}, int32 only as "
        "ARG_MAX/ARG_MIN indices and GATHER indices)")
