"""Control flow at import time: a WHILE loop with a compile-time trip count is unrolled into the main graph.

How it works
1. `Inliner` walks the ops of subgraph 0 in order. Ordinary ops become `ir.Op`s with their TFLite tensor ids and
   op indices, exactly as a model without control flow. IF, CALL_ONCE, CALL and the StableHLO control-flow ops
   are refused with a `ControlFlowError` (one line, exit status 2).
2. A WHILE reads its condition and body subgraphs (`WhileOptions`). The loop-carried values start as the WHILE's
   inputs; each value is either a tensor of the main graph or a numpy constant known offline.
3. Before every iteration the condition subgraph is evaluated offline with `fold_offline`: int32/bool
   arithmetic, comparisons and shape-only ops on constants (`i < N`). If its result is not a constant (it
   depends on activations or a model input) the loop is refused: only constant trip counts are supported.
4. A true condition copies the body's ops into the main graph with fresh tensor ids and op indices; the body's
   int32/bool ops on constants (the counter `i = i + 1`, slice offsets built from it) are folded the same way
   instead of copied; body constants (weights) are materialised once and shared by every iteration. The body's
   outputs become the next iteration's loop-carried values.
5. After the last iteration the WHILE's outputs are bound to the final values: the tensor computed last takes
   the WHILE output's id (so the model's outputs keep their names), a constant result makes the output a constant.
   A loop-carried value must keep its dtype, shape and quantization from one iteration to the next.

    WHILE(i=0, x, h) {cond: i < 3; body: i + 1, x, tanh(FC(x) + FC(h))}
      ->  FC, FC, ADD, TANH  (iteration 0)  FC, FC, ADD, TANH  (1)  FC, FC, ADD, TANH  (2)
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Union

import numpy as np

from ..errors import ControlFlowError, ModelFormatError
from ..ir import NUMPY_DTYPES, Op, Tensor

CONTROL_FLOW_OPS = ("WHILE", "IF", "CALL_ONCE", "CALL", "STABLEHLO_WHILE", "STABLEHLO_CASE", "STABLEHLO_COMPOSITE")
SUPPORTED_CONTROL_FLOW = ("only WHILE loops whose trip count is a compile-time constant are supported (an int32 "
                          "counter compared with a constant, as `for i in range(N)` converts); they are unrolled")
MAX_TRIPS = 4096
MAX_UNROLLED_OPS = 100_000

Value = Union[int, np.ndarray]  # a main-graph tensor id, or a constant known offline


# ---- offline evaluation of int32 / bool ops --------------------------------------------------------------------
_BINARY = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "MINIMUM": np.minimum, "MAXIMUM": np.maximum,
           "FLOOR_DIV": np.floor_divide, "FLOOR_MOD": np.mod}
_COMPARE = {"LESS": np.less, "LESS_EQUAL": np.less_equal, "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal,
            "EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "LOGICAL_AND": np.logical_and,
            "LOGICAL_OR": np.logical_or}
FOLDABLE = tuple(_BINARY) + tuple(_COMPARE) + ("LOGICAL_NOT", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "PACK",
                                               "CONCATENATION", "CAST", "IDENTITY")
_INDEX_DTYPES = ("int32", "int64", "bool")


def fold_offline(kind: str, ofb, arrays: list, outs: list) -> Optional[list]:
    """The outputs of an int32/int64/bool op whose inputs are all known, or None if it cannot be evaluated here
    (int8 arithmetic is never folded: its semantics live in the kernels)."""
    if kind not in FOLDABLE or len(outs) != 1 or outs[0].dtype not in _INDEX_DTYPES:
        return None
    if any(a is None or a.dtype.kind not in "iub" for a in arrays) or not arrays:
        return None
    from .tflite_import import _decode_options
    from .. import ops as opdefs

    attrs = _decode_options(kind, ofb) if kind in opdefs.OP_SPECS else None
    if getattr(attrs, "activation", "NONE") != "NONE":
        return None
    try:
        return _fold(kind, attrs, [np.asarray(x) for x in arrays], outs[0])
    except (ValueError, TypeError, IndexError):  # operands a real model would not have (shapes that do not match)
        return None


def _fold(kind: str, attrs, a: list, out: Tensor) -> Optional[list]:
    with np.errstate(all="ignore"):
        if kind in _BINARY:
            if len(a) != 2 or (kind in ("FLOOR_DIV", "FLOOR_MOD") and (a[1] == 0).any()):
                return None
            r = _BINARY[kind](a[0].astype(np.int64), a[1].astype(np.int64))
        elif kind in _COMPARE:
            if len(a) != 2:
                return None
            r = _COMPARE[kind](a[0], a[1])
        elif kind == "LOGICAL_NOT":
            r = np.logical_not(a[0])
        elif kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CAST", "IDENTITY"):
            r = a[0]
        elif kind == "PACK":
            if len({x.shape for x in a}) != 1 or not -a[0].ndim - 1 <= attrs.axis <= a[0].ndim:
                return None
            r = np.stack(a, axis=attrs.axis)
        else:  # CONCATENATION
            a = [x.reshape(1) if x.ndim == 0 else x for x in a]
            if len({x.ndim for x in a}) != 1 or not -a[0].ndim <= attrs.axis < a[0].ndim:
                return None
            try:
                r = np.concatenate(a, axis=attrs.axis)
            except ValueError:
                return None
    r = np.asarray(r)
    if r.size != out.size:
        return None
    npdt = np.dtype(NUMPY_DTYPES[out.dtype])
    if npdt.kind == "i" and r.size and (r.min() < np.iinfo(npdt).min or r.max() > np.iinfo(npdt).max):
        return None
    r = _contiguous(r.astype(npdt).reshape(out.shape))
    r.setflags(write=False)
    return [r]


@dataclasses.dataclass
class _Subgraph:
    index: int
    name: str
    fb: object
    tensors: dict
    inputs: tuple
    outputs: tuple


def _ids(arr) -> tuple:
    return tuple(int(t) for t in arr) if not isinstance(arr, int) else ()


class Inliner:
    """Builds the main graph's ops, unrolling WHILE loops (see the module docstring)."""

    def __init__(self, model, buf: bytes, label: str, opcodes: list, tensors: dict, n_ops: int):
        self.model, self.buf, self.label, self.opcodes = model, buf, label, opcodes
        self.main_tensors = dict(tensors)
        self.tensors: dict[int, Tensor] = dict(tensors)
        self.ops: list[Op] = []
        self.alias: dict[int, int] = {}  # a WHILE output of the main graph -> the tensor that holds its value
        self.next_tid = max(tensors, default=-1) + 1
        self.next_index = n_ops
        self.fresh: set[int] = set()  # tensors computed by unrolled ops that no WHILE output has claimed yet
        self.consts: dict = {}  # (dtype, shape, quant, bytes) -> main tensor id of a materialised constant
        self.inter: dict = {}  # (subgraph, tensor) -> main tensor id of a copied intermediate
        self.subgraphs: dict[int, _Subgraph] = {}
        self.stack: list[int] = [0]
        self.loops: list = []  # (WHILE op index, trip count) of every unrolled loop of the main graph

    # ---- the main graph --------------------------------------------------------------------------------------
    def main_op(self, sg, i: int) -> None:
        from .tflite_import import _check_refs, _op_attrs, _op_record

        where = f"{self.label}: op #{i}"
        kind, ins, outs, inter, ofb = _op_record(self.label, where, sg, i, self.opcodes)
        where = f"{where} {kind}"
        if kind in CONTROL_FLOW_OPS:
            _check_refs(where, ins, outs, inter, self.main_tensors)
            self._refuse_other(where, kind)
            start = len(self.ops)
            self.fresh = set()  # only this loop's tensors may take the names of its outputs
            vals = [self._main_value(where, t) for t in ins]
            finals, trips = self._unroll(where, ofb, vals, [self.main_tensors[t] for t in outs])
            self.loops.append((i, trips))
            self._bind_main(where, start, outs, finals)
            return
        attrs = _op_attrs(where, kind, ins, outs, inter, ofb, self.main_tensors)
        ins = tuple(None if t is None else self.alias.get(t, t) for t in ins)
        self.ops.append(Op(kind=kind, inputs=ins, outputs=outs, attrs=attrs, index=i, intermediates=inter))

    def graph_outputs(self, gout: tuple, gin: tuple) -> tuple:
        for role, tids in (("input", gin), ("output", gout)):
            for t in tids:
                if t not in self.main_tensors:
                    raise ModelFormatError(f"{self.label}: the model's {role} is tensor {t}, the model has "
                                           f"{len(self.main_tensors)}")
        out = tuple(self.alias.get(t, t) for t in gout)
        for t, o in zip(gout, out):
            if o != t and (o in gin or out.count(o) > 1):
                raise ControlFlowError(f"{self.label}: the model's output '{self.tensors[t].name}' (#{t}) is a WHILE "
                                       "output that the loop does not compute (it passes a model input or another "
                                       "output through unchanged); only outputs computed by the loop body are "
                                       "supported")
        return out

    def _main_value(self, where: str, t: Optional[int]) -> Value:
        if t is None:
            raise ModelFormatError(f"{where} has an absent input")
        return self.alias.get(t, t)

    def _bind_main(self, where: str, start: int, outs: tuple, finals: list) -> None:
        renamed: dict[int, int] = {}
        for k, (o, v) in enumerate(zip(outs, finals)):
            t = self.tensors[o]
            if isinstance(v, np.ndarray):
                self._check_same(where, k, v, t)
                arr = _contiguous(v.astype(NUMPY_DTYPES[t.dtype]).reshape(t.shape))
                arr.setflags(write=False)
                self.tensors[o] = dataclasses.replace(t, data=arr)
                continue
            v = renamed.get(v, v)
            self._check_same(where, k, v, t)
            if v in self.fresh:
                renamed[v] = o
                self.fresh.discard(v)
                self.tensors.pop(v)
            else:
                self.alias[o] = v
        if renamed:
            def rn(tid):
                return renamed.get(tid, tid) if tid is not None else None

            self.ops[start:] = [dataclasses.replace(op, inputs=tuple(rn(t) for t in op.inputs),
                                                    outputs=tuple(rn(t) for t in op.outputs))
                                for op in self.ops[start:]]

    # ---- subgraphs ----------------------------------------------------------------------------------------
    def _subgraph(self, where: str, k: int) -> _Subgraph:
        n = self.model.SubgraphsLength()
        if not 1 <= k < n:
            raise ModelFormatError(f"{where} refers to subgraph {k}, the model has {n}")
        if k in self.stack:
            raise ModelFormatError(f"{where}: subgraph {k} calls itself (recursive control flow)")
        if k not in self.subgraphs:
            from .tflite_import import _read_tensors

            fb = self.model.Subgraphs(k)
            name = fb.Name().decode("utf-8", "replace") if fb.Name() else f"subgraph{k}"
            tensors = _read_tensors(self.model, self.buf, f"{self.label}: subgraph {k} '{name}'", fb)
            sub = _Subgraph(k, name, fb, tensors, _ids(fb.InputsAsNumpy()), _ids(fb.OutputsAsNumpy()))
            for t in sub.inputs + sub.outputs:
                if t not in tensors:
                    raise ModelFormatError(f"{where}: subgraph {k} '{name}' names tensor {t} as an input or output, "
                                           f"it has {len(tensors)}")
            self.subgraphs[k] = sub
        return self.subgraphs[k]

    def _refuse_other(self, where: str, kind: str) -> None:
        if kind != "WHILE":
            raise ControlFlowError(f"{where}: {kind} (control flow) is not supported; {SUPPORTED_CONTROL_FLOW}")

    # ---- WHILE -------------------------------------------------------------------------------------------
    def _unroll(self, where: str, ofb, vals: list, out_meta: list) -> tuple[list, int]:
        from tflite.WhileOptions import WhileOptions

        table = ofb.BuiltinOptions()
        if table is None:
            raise ModelFormatError(f"{where} has no WhileOptions (condition and body subgraphs)")
        opt = WhileOptions()
        opt.Init(table.Bytes, table.Pos)
        cond = self._subgraph(where, int(opt.CondSubgraphIndex()))
        body = self._subgraph(where, int(opt.BodySubgraphIndex()))
        n = len(vals)
        if not (len(out_meta) == n == len(body.inputs) == len(body.outputs) == len(cond.inputs)) or \
                len(cond.outputs) != 1:
            raise ModelFormatError(
                f"{where}: inconsistent loop signature ({n} inputs, {len(out_meta)} outputs; body subgraph "
                f"{body.index} takes {len(body.inputs)} and returns {len(body.outputs)}; condition subgraph "
                f"{cond.index} takes {len(cond.inputs)} and returns {len(cond.outputs)}, it must return 1)")
        trips = 0
        while self._condition(where, cond, vals):
            if trips >= MAX_TRIPS:
                raise ControlFlowError(f"{where}: the loop runs more than {MAX_TRIPS} iterations; "
                                       f"{SUPPORTED_CONTROL_FLOW} (at most {MAX_TRIPS} iterations)")
            for k, (v, t) in enumerate(zip(vals, body.inputs)):
                self._check_same(where, k, v, body.tensors[t])
            self.stack.append(body.index)
            vals = self._run_body(body, vals, trips)
            self.stack.pop()
            trips += 1
        return vals, trips

    def _condition(self, where: str, cond: _Subgraph, vals: list) -> bool:
        from .tflite_import import _check_refs, _op_record

        env: dict = {}
        unknown: dict = {}
        for k, (t, v) in enumerate(zip(cond.inputs, vals)):
            c = self._const_of(v)
            if c is None:
                unknown[t] = f"'{cond.tensors[t].name}', loop value {k}, which is not a constant"
            else:
                env[t] = c
        for j in range(cond.fb.OperatorsLength()):
            cwhere = f"{self.label}: subgraph {cond.index} '{cond.name}' op #{j}"
            kind, ins, outs, inter, ofb = _op_record(self.label, cwhere, cond.fb, j, self.opcodes)
            _check_refs(f"{cwhere} {kind}", ins, outs, inter, cond.tensors)
            arrays, reason = [], None
            for t in ins:
                if t is None:
                    continue
                if t in unknown:
                    reason = reason or unknown[t]
                elif t in env:
                    arrays.append(env[t])
                elif cond.tensors[t].data is not None:
                    arrays.append(cond.tensors[t].data)
                else:
                    raise ModelFormatError(f"{cwhere} {kind} reads tensor '{cond.tensors[t].name}' (#{t}) before it "
                                           "is computed")
            res = None
            if reason is None:
                res = fold_offline(kind, ofb, arrays, [cond.tensors[o] for o in outs])
                if res is None:
                    reason = f"op #{j} {kind}, which cannot be evaluated offline"
            for m, o in enumerate(outs):
                if res is None:
                    unknown[o] = reason
                else:
                    env[o] = res[m]
        out = cond.outputs[0]
        if out in env:
            return bool(np.asarray(env[out]).reshape(-1)[0]) if env[out].size else False
        if out in unknown:
            reason = unknown[out]
        elif cond.tensors[out].data is not None:
            return bool(np.asarray(cond.tensors[out].data).reshape(-1)[0])
        else:
            reason = f"tensor '{cond.tensors[out].name}', which nothing computes"
        raise ControlFlowError(f"{where}: the trip count is not a compile-time constant (the condition subgraph "
                               f"{cond.index} '{cond.name}' depends on {reason}); {SUPPORTED_CONTROL_FLOW}")

    def _run_body(self, body: _Subgraph, vals: list, it: int) -> list:
        from .tflite_import import _check_refs, _op_attrs, _op_record

        env: dict = dict(zip(body.inputs, vals))
        for j in range(body.fb.OperatorsLength()):
            bwhere = f"{self.label}: subgraph {body.index} '{body.name}' op #{j}"
            kind, ins, outs, inter, ofb = _op_record(self.label, bwhere, body.fb, j, self.opcodes)
            bwhere = f"{bwhere} {kind}"
            _check_refs(bwhere, ins, outs, inter, body.tensors)
            got = [None if t is None else self._body_value(bwhere, body, env, t) for t in ins]
            if kind in CONTROL_FLOW_OPS:
                self._refuse_other(bwhere, kind)
                if any(v is None for v in got):
                    raise ModelFormatError(f"{bwhere} has an absent input")
                self.stack.append(body.index)
                finals, _ = self._unroll(bwhere, ofb, got, [body.tensors[o] for o in outs])
                self.stack.pop()
                for k, (o, v) in enumerate(zip(outs, finals)):
                    self._check_same(bwhere, k, v, body.tensors[o])
                    env[o] = v
                continue
            consts = [None if v is None else self._const_of(v) for v in got]
            if all(c is not None for c in consts):
                res = fold_offline(kind, ofb, consts, [body.tensors[o] for o in outs])
                if res is not None:
                    env.update(zip(outs, res))
                    continue
            attrs = _op_attrs(bwhere, kind, ins, outs, inter, ofb, body.tensors)
            if len(self.ops) >= MAX_UNROLLED_OPS:
                raise ControlFlowError(f"{bwhere}: unrolling the loop needs more than {MAX_UNROLLED_OPS} ops; "
                                       f"{SUPPORTED_CONTROL_FLOW} (and small enough to unroll)")
            gins = tuple(None if v is None else self._materialise(v, body.tensors[t]) for v, t in zip(got, ins))
            gouts = []
            for o in outs:
                if o in env or body.tensors[o].data is not None or o in body.inputs:
                    raise ModelFormatError(f"{bwhere}: output '{body.tensors[o].name}' (#{o}) is produced twice "
                                           "(or is a constant or an input)")
                tid = self._new_tensor(body.tensors[o], f"{body.tensors[o].name}@{it}")
                self.fresh.add(tid)
                env[o] = tid
                gouts.append(tid)
            ginter = []
            for t in inter:
                key = (body.index, t)
                if key not in self.inter:
                    self.inter[key] = self._new_tensor(body.tensors[t], body.tensors[t].name)
                ginter.append(self.inter[key])
            self.ops.append(Op(kind=kind, inputs=gins, outputs=tuple(gouts), attrs=attrs, index=self.next_index,
                               intermediates=tuple(ginter)))
            self.next_index += 1
        return [self._body_value(f"{self.label}: subgraph {body.index} '{body.name}'", body, env, t)
                for t in body.outputs]

    # ---- values ------------------------------------------------------------------------------------------
    def _body_value(self, where: str, sub: _Subgraph, env: dict, t: int) -> Value:
        if t in env:
            return env[t]
        lt = sub.tensors[t]
        if lt.data is not None:
            return lt.data
        if lt.variable:
            raise ControlFlowError(f"{where}: variable tensor '{lt.name}' (#{t}) inside a loop body is not supported; "
                                   f"{SUPPORTED_CONTROL_FLOW}")
        raise ModelFormatError(f"{where} reads tensor '{lt.name}' (#{t}) before it is computed")

    def _const_of(self, v: Value) -> Optional[np.ndarray]:
        if isinstance(v, np.ndarray):
            return v
        return self.tensors[v].data

    def _new_tensor(self, like: Tensor, name: str, data=None) -> int:
        tid = self.next_tid
        self.next_tid += 1
        self.tensors[tid] = dataclasses.replace(like, id=tid, name=name, data=data, variable=False)
        return tid

    def _materialise(self, v: Value, like: Tensor) -> int:
        """A main-graph tensor holding `v`: its id, or a (shared) constant tensor with `like`'s type and quant."""
        if not isinstance(v, np.ndarray):
            return v
        arr = _contiguous(np.asarray(v).astype(NUMPY_DTYPES[like.dtype]).reshape(like.shape))
        key = (like.dtype, like.shape, like.quant, arr.tobytes())
        if key not in self.consts:
            arr.setflags(write=False)
            self.consts[key] = self._new_tensor(like, like.name, data=arr)
        return self.consts[key]

    def _check_same(self, where: str, k: int, v: Value, t: Tensor) -> None:
        """A loop-carried value must have the type, shape and quantization of the tensor it flows into."""
        if isinstance(v, np.ndarray):
            if np.dtype(NUMPY_DTYPES.get(t.dtype, np.void)) != v.dtype or v.size != t.size:
                raise ControlFlowError(f"{where}: loop value {k} ('{t.name}') is a {v.dtype} constant of "
                                       f"{v.size} elements, the tensor it flows into is {t.dtype}{list(t.shape)}; "
                                       "loop-carried values must keep their type and shape")
            return
        g = self.tensors[v]
        if (g.dtype, tuple(g.shape), g.quant) != (t.dtype, tuple(t.shape), t.quant):
            raise ControlFlowError(f"{where}: loop value {k} changes between '{g.name}' ({g.dtype}{list(g.shape)}, "
                                   f"quantization {_q(g)}) and '{t.name}' ({t.dtype}{list(t.shape)}, quantization "
                                   f"{_q(t)}); the unrolled loop needs the same type, shape and quantization on the "
                                   "body's inputs and outputs")


def _q(t: Tensor) -> str:
    if t.quant is None:
        return "none"
    return f"scale {t.quant.scale[0]:.6g} zero point {t.quant.zero_point[0]}" + (" per-channel" if t.quant.per_channel
                                                                                 else "")


def _contiguous(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy that keeps a 0-d array 0-d (np.ascontiguousarray makes it 1-d)."""
    return np.array(a, order="C", copy=True)
