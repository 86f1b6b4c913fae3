"""BANDED_FC (passes/fuse_bands) on DSP cores: a convolution whose output only a FULLY_CONNECTED reads, computed one
output row at a time, each row added into the fully connected layer's accumulators as soon as it exists.

How it works
1. `fc_plan` lays the fully connected layer's weights out per band row (a convolution output row is L = W x C
   consecutive inputs of the flattened tensor): per row, per block of RB output rows, the int8 weight words in
   the kernel's load order, then the tail weights (fc_band_s8_dsp.c.in); the folded bias and the requantization
   constants are the ones fully_connected_s8_dsp uses (`_parts`), so the accumulators and the output are
   exactly that kernel's.
2. `emit`: the accumulators start at the folded bias (a copy into scratch); per output row of the convolution
   its sub-layer (kernels/band.py's sub-contexts: the convolution on the window of input rows that row reads,
   with that window's vertical padding) writes the row into the band, `_acc` adds it; rows whose sub-layer is
   the same and whose pointers move linearly become one C loop; `_out` requantizes.
3. Scratch: the band row, the accumulators, then the convolution sub-layers' own scratch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.kernels import band
from specializer.registry import KernelEntry

from .common import POS, clamp_of, interleave, pack8, variant_name

TEMPLATE = str(Path(__file__).resolve().parent / "fc_band_s8_dsp.c.in")
RB = 4


def fc_plan(g, fc, row_len: int) -> dict:
    """The BANDED_FC constants of fully connected layer `fc` fed `row_len` inputs per call: template arguments,
    folded bias, weight stream (per band row), requantization constants (empty when baked into the code)."""
    from .fully_connected import _parts, _uniform

    wq, folded, rq = _parts(g, fc)
    r, k = wq.shape
    assert k % row_len == 0
    rb = min(RB, r)
    l4 = row_len // 4 * 4
    parts = []
    for c0 in range(0, k, row_len):
        chunk = wq[:, c0:c0 + row_len]
        for r0 in range(0, r, rb):
            blk = chunk[r0:r0 + rb, :l4].reshape(min(rb, r - r0), l4 // 4, 4)
            parts.append(interleave(pack8(blk[..., 0], blk[..., 1], blk[..., 2], blk[..., 3]).astype(np.int64)))
            parts.append(chunk[r0:r0 + rb, l4:].T.reshape(-1))
    lo, hi = clamp_of(fc)
    uniform = _uniform(rq)
    words = row_len // 4
    args = dict(L=row_len, R=r, RB=rb, U=4 if words % 4 == 0 or words > 16 else max(words, 1), RQ=rq.mode, UNIFORM=uniform, ACT_MIN=lo, ACT_MAX=hi,
                CLAMP=lo > -128 or hi < 127, POS=POS)
    consts = np.concatenate(rq.channels(0, r)) if uniform is None else np.zeros(0, dtype=np.int64)
    return dict(args=args, bias=np.asarray(folded, dtype=np.int64).astype(np.int32),
                stream=np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1) for p in parts]).astype(np.int32),
                rq=consts.astype(np.int32), chunk_words=sum(np.asarray(p).size for p in parts) // (k // row_len))


def variant(args: dict) -> str:
    return variant_name(l=args["L"], r=args["R"], b=args["RB"], u=args["U"], rq=args["RQ"][0]) + "__dsp"


def emit(ctx):
    op = ctx.op
    a = op.attrs
    plan = a.plan
    args = plan["args"]
    mp = ctx.g.memory_plan
    row = mp.scratch_offsets[op.index]  # the band: one output row of P
    acc = row + (a.row_bytes + 3) // 4 * 4
    sub_scr = acc + 4 * args["R"]
    calls = band.sub_calls(ctx, sub_scr)
    fn = ctx.fn(template=TEMPLATE, variant=variant(args), **args)
    w = ctx.weights(plan["stream"], "int32_t")
    bias = ctx.weights(plan["bias"], "int32_t")
    rq = ctx.weights(plan["rq"], "int32_t") if plan["rq"].size else "(const int32_t *)0"
    x_off = mp.offsets[op.inputs[0]]
    y = ctx.out()
    cw = plan["chunk_words"]
    accp = f"((int32_t *)(arena + {acc}))"

    def step(s, var=None, dx=0):
        code, i, o = calls[s.p_op]
        xo = f"{x_off + s.x_row * a.x_row_bytes}" + (f" + {dx * a.x_row_bytes} * {var}" if var else "")
        wo = f"{w} + {s.row * cw}" + (f" + {cw} * {var}" if var else "")
        return [code.replace(f"@{i[0]}@", xo).replace(f"@{o}@", f"{row}"),
                f"{fn}_acc((const int8_t *)(arena + {row}), {wo}, {accp});"]

    steps = list(a.steps)
    ctx.call("{")
    ctx.call(f"    memcpy({accp}, {bias}, {4 * args['R']}u);")
    if a.zero_scratch:  # the row sub-layers' buffer borders (variant BZ): zero once
        ctx.call(f"    memset(arena + {sub_scr}, 0, {max(o.kernel.scratch_bytes for o in a.sub.ops)}u);")
    k = 0
    while k < len(steps):
        s = steps[k]
        dx = steps[k + 1].x_row - s.x_row if k + 1 < len(steps) else 0
        j = k + 1
        while j < len(steps) and steps[j].p_op == s.p_op and steps[j].x_row - s.x_row == dx * (j - k):
            j += 1
        if j - k >= 3:
            ctx.call(f"    for (int32_t i = 0; i < {j - k}; ++i) {{")
            for line in step(s, "i", dx):
                ctx.call("        " + line.replace("\n", "\n        "))
            ctx.call("    }")
            k = j
        else:
            for line in step(s):
                ctx.call("    " + line.replace("\n", "\n    "))
            k += 1
    ctx.call(f"    {fn}_out({accp}, {rq}, {ctx.ptr(y.id)}, {y.quant.zero_point[0]});")
    ctx.call("}")


# scratch and the sub-layers' weights exactly as BANDED_PAIR's (the scratch size is fixed when the op is built)
ENTRY = KernelEntry(name="band_fc", ops=("BANDED_FC",), template=TEMPLATE, emit=emit, scratch_bytes=band.scratch_bytes,
                    reorder=band.reorder, generic=False, requires=frozenset({"dsp"}))
