"""prune_channels: channels whose values are known offline leave the graph; their effect is folded into biases.

Trained int8 models carry output channels whose requantization sends every reachable accumulator to the same
output byte (a tiny per-channel scale: the MLPerf VWW MobileNet has layers where half the channels are such).
TFLite computes them anyway. This pass proves them constant and removes them, bit-exactly.

How it works
1. Forward analysis (`constant_channels`): per activation tensor, the channels whose value is the same for every
   model input, with that value. A CONV_2D or DEPTHWISE_CONV_2D output channel is constant when the clamped
   requantization (monotonic for multipliers >= 0) gives the same byte at both ends of its accumulator's
   reachable range. That range comes from the bias, the weights, each input channel's value range (the producer's
   clamp, or its constant) and padded taps (0). A depthwise channel whose input channel is constant at the padding
   value (the zero point) has a constant accumulator (its bias) everywhere.
2. Which channels go (`plan`): a tensor T made by a CONV_2D, read by one op only and not a model output, loses
   its constant channels when that reader folds them exactly: a CONV_2D whose constant-channel contribution is the
   same at every output pixel (no padded taps, or the value equals the zero point). It adds
   sum w * (v - zp_in) to its bias and drops those input channels. When the reader is a depthwise (multiplier 1)
   whose own output U is read by such a convolution only, the depthwise's constant output channels go from T, the
   depthwise and U together (T's channel there is read by nothing else). The count removed from a tensor is
   rounded down to a multiple of 4 (the DSP kernels take channels 4 at a time) and leaves at least one channel;
   the kept constant channels are computed as before.
3. Rewrite: producers lose output channels (weights, bias, per-channel scales), readers lose input channels,
   tensors shrink (less RAM as well as fewer MACs). Biases that would leave int32 cancel the pruning of that tensor.

    before: CONV(8->16) -> T[16] -> DW -> U[16] -> CONV(16->32)     (channels 3, 7, 9, 12 of T provably constant)
    after:  CONV(8->12) -> T[12] -> DW -> U[12] -> CONV(12->32, bias += sum w[:, c] * (u_c - zp_U))
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from specializer.ir import Graph, Op, Quant, Tensor
from specializer.ops import explicit_padding
from specializer.quant import mbqm

INT32 = 1 << 31
_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _plain(g: Graph, op: Op) -> bool:
    """An int8 conv/depthwise with symmetric int8 weights, an int32 bias (or none) and requantization constants."""
    if op.kind not in _KINDS or len(op.inputs) < 2 or op.requant is None or not hasattr(op.requant, "shift"):
        return False
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    b = g.t(op.input(2)) if op.input(2) is not None else None
    if x.dtype != "int8" or y.dtype != "int8" or not w.is_const or w.dtype != "int8" or w.quant is None:
        return False
    if any(w.quant.zero_point) or x.quant is None or y.quant is None or len(x.shape) != 4 or x.is_const:
        return False
    if b is not None and (not b.is_const or b.dtype != "int32"):
        return False
    if op.kind == "DEPTHWISE_CONV_2D" and (x.shape[3] != y.shape[3] or w.shape[0] != 1):
        return False
    if op.kind == "CONV_2D" and (len(w.shape) != 4 or w.shape[3] != x.shape[3]):  # grouped convolution
        return False
    return op.alias_of is None and op.folded_bias is None and op.kernel is None


def _padded(g: Graph, op: Op) -> bool:
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    return any(p > 0 for p in explicit_padding(op.attrs, x.shape[1:3], y.shape[1:3], (w.shape[1], w.shape[2])))


def _bias(g: Graph, op: Op, n: int) -> np.ndarray:
    b = op.input(2)
    return g.t(b).data.astype(np.int64).reshape(-1) if b is not None else np.zeros(n, dtype=np.int64)


def _per_channel(v, n: int) -> list:
    return list(v) if len(v) == n else [v[0]] * n


def _output_constants(g: Graph, op: Op, x_range: tuple[int, int], x_const: dict) -> dict:
    """Channel -> constant output byte of a plain conv/depthwise (see the module docstring, step 1)."""
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    zp, yzp = int(x.quant.zero_point[0]), int(y.quant.zero_point[0])
    lo_c, hi_c = op.clamp if op.clamp is not None else (-128, 127)
    n = y.shape[3]
    mult, shift = _per_channel(op.requant.multiplier, n), _per_channel(op.requant.shift, n)
    bias = _bias(g, op, n)
    wd = w.data.astype(np.int64)
    padded = _padded(g, op)
    # per input channel: the range of (x - zp), exact for constant channels
    cin = x.shape[3]
    d_lo = np.full(cin, x_range[0] - zp, dtype=np.int64)
    d_hi = np.full(cin, x_range[1] - zp, dtype=np.int64)
    for c, v in x_const.items():
        d_lo[c] = d_hi[c] = v - zp
    if padded:  # a padded tap contributes 0
        d_lo, d_hi = np.minimum(d_lo, 0), np.maximum(d_hi, 0)
    if op.kind == "CONV_2D":  # w: (O, KH, KW, I)
        a, b = wd * d_lo[None, None, None, :], wd * d_hi[None, None, None, :]
        lo = bias + np.minimum(a, b).sum(axis=(1, 2, 3))
        hi = bias + np.maximum(a, b).sum(axis=(1, 2, 3))
    else:  # w: (1, KH, KW, C)
        a, b = wd[0] * d_lo[None, None, :], wd[0] * d_hi[None, None, :]
        lo = bias + np.minimum(a, b).sum(axis=(0, 1))
        hi = bias + np.maximum(a, b).sum(axis=(0, 1))
    out = {}
    for ch in range(n):
        if mult[ch] < 0 or max(abs(lo[ch]), abs(hi[ch])) >= INT32:
            continue
        ys = [min(max(mbqm(int(acc), int(mult[ch]), int(shift[ch])) + yzp, lo_c), hi_c) for acc in (lo[ch], hi[ch])]
        if ys[0] == ys[1]:
            out[ch] = ys[0]
    return out


def constant_channels(g: Graph) -> dict[int, dict[int, int]]:
    """Tensor id -> {channel: constant int8 value} for activation tensors made by plain conv/depthwise layers."""
    consts: dict[int, dict[int, int]] = {}
    ranges: dict[int, tuple[int, int]] = {}
    for op in g.ops:
        if op.clamp is not None and op.outputs:
            ranges[op.outputs[0]] = tuple(op.clamp)
        if not _plain(g, op):
            continue
        xid = op.inputs[0]
        consts[op.outputs[0]] = _output_constants(g, op, ranges.get(xid, (-128, 127)), consts.get(xid, {}))
    return consts


def _foldable(g: Graph, op: Op, values: dict) -> bool:
    """A plain CONV_2D reader adds the same sum w * (v - zp) at every output pixel for these constant inputs."""
    if op.kind != "CONV_2D" or not _plain(g, op):
        return False
    zp = int(g.t(op.inputs[0]).quant.zero_point[0])
    return not _padded(g, op) or all(v == zp for v in values.values())


def _sole_reader(g: Graph, tid: int) -> Optional[Op]:
    readers = g.consumers(tid)
    if len(readers) != 1 or tid in g.outputs or tid in g.inputs or readers[0].inputs.count(tid) != 1:
        return None
    return readers[0] if readers[0].inputs[0] == tid else None


def _round4(chans: list, n: int) -> list:
    """A multiple of 4 of the removable channels, at least one of the n channels kept."""
    return sorted(chans)[:min(len(chans), n - 1) // 4 * 4]


def plan(g: Graph) -> dict[int, dict[int, int]]:
    """Tensor id -> {channel: value} of the channels to remove (value None: read by nothing that is kept)."""
    consts = constant_channels(g)
    drop: dict[int, dict] = {}
    for op in g.ops:
        if op.kind != "CONV_2D" or not _plain(g, op):
            continue
        t = op.outputs[0]
        reader = _sole_reader(g, t)
        if reader is None or not consts.get(t) and reader.kind == "CONV_2D":
            continue
        if reader.kind == "CONV_2D":
            vals = consts[t]
            if _foldable(g, reader, vals):
                keep = _round4(list(vals), g.t(t).shape[3])
                if keep:
                    drop[t] = {c: vals[c] for c in keep}
        elif reader.kind == "DEPTHWISE_CONV_2D" and _plain(g, reader):
            u = reader.outputs[0]
            nxt = _sole_reader(g, u)
            vals = consts.get(u, {})
            if nxt is not None and vals and _foldable(g, nxt, vals):
                keep = _round4(list(vals), g.t(u).shape[3])
                if keep:
                    drop[t] = {c: None for c in keep}
                    drop[u] = {c: vals[c] for c in keep}
    return drop


def _keep_mask(n: int, gone) -> np.ndarray:
    m = np.ones(n, dtype=bool)
    m[list(gone)] = False
    return m


def _const(t: Tensor, data: np.ndarray, quant: Optional[Quant] = None, tid: Optional[int] = None) -> Tensor:
    data = np.ascontiguousarray(data)
    data.setflags(write=False)
    return dataclasses.replace(t, id=t.id if tid is None else tid, shape=tuple(data.shape), data=data,
                               quant=quant if quant is not None else t.quant)


def _subset_quant(q: Quant, keep: np.ndarray) -> Quant:
    if len(q.scale) <= 1:
        return q
    return dataclasses.replace(q, scale=tuple(s for s, k in zip(q.scale, keep) if k),
                               zero_point=tuple(z for z, k in zip(q.zero_point, keep) if k))


def _subset_requant(rq, keep: np.ndarray):
    if len(rq.multiplier) <= 1:
        return rq
    return dataclasses.replace(rq, multiplier=tuple(m for m, k in zip(rq.multiplier, keep) if k),
                               shift=tuple(s for s, k in zip(rq.shift, keep) if k))


def prune_channels(g: Graph) -> Graph:
    drop = plan(g)
    if not drop:
        return g
    tensors: dict[int, Tensor] = {}
    next_id = g.new_tensor_id()
    ops = []

    def fresh(t: Tensor, data: np.ndarray, quant: Optional[Quant] = None) -> int:
        nonlocal next_id
        tensors[next_id] = _const(t, data, quant, next_id)
        next_id += 1
        return next_id - 1

    # biases first: a fold that leaves int32 cancels that tensor's pruning
    for tid, gone in list(drop.items()):
        reader = _sole_reader(g, tid)
        if reader.kind != "CONV_2D" or any(v is None for v in gone.values()):
            continue
        w = g.t(reader.inputs[1]).data.astype(np.int64)
        zp = int(g.t(tid).quant.zero_point[0])
        add = sum(w[:, :, :, c].sum(axis=(1, 2)) * (v - zp) for c, v in gone.items())
        b = _bias(g, reader, w.shape[0]) + add
        if np.abs(b).max() >= INT32:
            prod = g.producer(tid)
            drop.pop(tid)
            if prod.kind == "DEPTHWISE_CONV_2D":  # the depthwise's input goes with it
                drop.pop(prod.inputs[0], None)
    for op in g.ops:
        x, y = op.inputs[0] if op.inputs else None, op.outputs[0] if op.outputs else None
        gone_in, gone_out = drop.get(x, {}), drop.get(y, {})
        if not gone_in and not gone_out:
            ops.append(op)
            continue
        inputs = list(op.inputs)
        w = g.t(op.inputs[1])
        wd = w.data
        if op.kind == "DEPTHWISE_CONV_2D":
            keep = _keep_mask(wd.shape[3], gone_out)
            assert set(gone_in) == set(gone_out)
            inputs[1] = fresh(w, wd[:, :, :, keep], _subset_quant(w.quant, keep))
            bias = _bias(g, op, wd.shape[3])[keep]
            rq = _subset_requant(op.requant, keep)
        else:
            bias = _bias(g, op, wd.shape[0])
            if gone_in:  # the reader: fold the constant inputs into the bias, drop them from the weights
                zp = int(g.t(x).quant.zero_point[0])
                w64 = wd.astype(np.int64)
                bias = bias + sum(w64[:, :, :, c].sum(axis=(1, 2)) * (v - zp) for c, v in gone_in.items())
                wd = wd[:, :, :, _keep_mask(wd.shape[3], gone_in)]
            keep = _keep_mask(wd.shape[0], gone_out)
            wd, bias = wd[keep], bias[keep]
            inputs[1] = fresh(w, wd, _subset_quant(w.quant, keep))
            rq = _subset_requant(op.requant, keep)
        if op.input(2) is not None:
            bt = g.t(op.input(2))
            inputs[2] = fresh(bt, bias.astype(np.int32),
                              _subset_quant(bt.quant, keep) if bt.quant is not None and len(bt.quant.scale) == len(keep)
                              else None)
        else:
            inputs = inputs + [None] * (3 - len(inputs))
            inputs[2] = fresh(Tensor(id=-1, name=f"{g.t(y).name}/bias", shape=(), dtype="int32"),
                              bias.astype(np.int32))
        ops.append(dataclasses.replace(op, inputs=tuple(inputs), requant=rq))
    kept = dict(g.meta.get("pruned_channels", {}))
    for tid, gone in drop.items():
        t = g.t(tid)
        tensors[tid] = dataclasses.replace(t, shape=t.shape[:3] + (t.shape[3] - len(gone),))
        kept[tid] = tuple(c for c in range(t.shape[3]) if c not in gone)
    g = g.with_tensors(tensors).with_ops(ops)
    # tensor id -> the original channels it still holds (benchmarks compare layer outputs through it)
    return dataclasses.replace(g, meta={**g.meta, "pruned_channels": kept})
