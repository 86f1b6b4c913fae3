"""FULLY_CONNECTED on DSP cores: int8 weights unpacked in registers, RB (<= 6) rows per block, SMLAD.

How it works
1. `reject` takes what the generic kernel takes (symmetric int8 weights, constant bias) provided the folded bias
   (bias - zp_in * sum(w)) fits int32.
2. The stream per block of RB rows: folded biases, the int8 weight words in the order the kernel loads them,
   tail weights for a depth that is not a multiple of 4, then the requantization constants.
3. XT (the default where 256 x the accumulator bound fits int32): the input row is transformed once into the
   scratch and the raw weight words meet it in SMLADs (no weight unpacking; fully_connected_xt_s8_dsp.c.in):
   the stream then holds 256 (folded bias + 127 * the row's odd-position weights), the weight bytes of even
   positions offset by 128, and the tail weights x256.
4. XT in place (variant IP, where the input row dies at this layer: `liveness.dies_at`): only the B half of the
   transform is kept, over the input's own words; no scratch, one AND and one MVN more per 4 inputs and row
   block. The memory plan lets the kernel write its input (`clobbers`) and check_plan proves the input dies here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specializer.ir import IRError
from specializer.kernels import fully_connected as generic_fc
from specializer.registry import KernelEntry

from .common import (POS, add_stream, bias_of, clamp_of, finish_stream, input_span, interleave, pack8,
                     requant_constants, variant_name)

TEMPLATE = str(Path(__file__).resolve().parent / "fully_connected_s8_dsp.c.in")
XT_TEMPLATE = str(Path(__file__).resolve().parent / "fully_connected_xt_s8_dsp.c.in")
INT32 = 1 << 31
XT_LIMIT = 1 << 23  # the XT form keeps 256 x the accumulator in an int32


def _parts(g, op):
    x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
    wq = w.data.astype(np.int64)
    r, k = wq.shape
    zp = x.quant.zero_point[0]
    bias = bias_of(g, op, r)
    folded = bias - zp * wq.sum(axis=1)
    bound = np.minimum(np.abs(bias) + input_span(zp) * np.abs(wq).sum(axis=1),
                       np.abs(folded) + 128 * np.abs(wq).sum(axis=1))
    rq = requant_constants(op, bound, g.t(op.outputs[0]).quant.zero_point[0])
    return wq, folded, rq


def reject(g, op, core):
    why = generic_fc._reject(g, op, core)
    if why:
        return why
    if any(g.t(op.inputs[1]).quant.zero_point):
        return "asymmetric weights (the generic kernel takes them)"
    _, folded, _ = _parts(g, op)
    if np.abs(folded).max(initial=0) >= INT32:
        return "bias - zp * sum(w) does not fit int32"
    return None


SMALL_MACS = 4096  # below this many MACs per input row a layer's cycles do not pay for unrolled code


def default_variant(k: int, r: int) -> dict:
    words = k // 4
    if r * k < SMALL_MACS:
        unroll = min(words, 4)
    else:
        unroll = words if words <= 16 else (8 if words % 8 == 0 else 4)
    return dict(RB=min(6, r), UNROLL=max(unroll, 1))


def template_args(g, op) -> dict:
    x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
    r, k = w.shape
    lo, hi = clamp_of(op)
    _, _, rq = _parts(g, op)
    chosen = dict(op.kernel.variant) if op.kernel is not None else {}
    xt = _xt_ok(g, op) and bool(chosen.get("XT", True))
    return dict(N=x.size // k, K=k, R=r, **default_variant(k, r), RQ=rq.mode, ACT_MIN=lo, ACT_MAX=hi,
                CLAMP=lo > -128 or hi < 127, POS=POS, UNIFORM=_uniform(rq), XT=xt,
                IP=xt and bool(chosen.get("IP", False)) and _ip_ok(g, op))


def variants(g, op) -> list:
    """XT (fast; a 2K-byte scratch for the transformed input row), XT in place (no scratch, where the input dies
    here) or the unpacking form (no scratch): measured on the autoencoder's 640-deep first layer (-O3,
    2026-11-30), 103,447 cycles with XT (1.26 per MAC; `specializer bench mlperf_ad_fc_autoencoder.tflite` before
    the in-place form existed), 106,996 in place (the default build now: ~1 cycle more per 4 inputs and block of
    rows) and 127,507 unpacking (1.56; `benchmarks/func_profile.py ... --prefer '{"XT": false}'`)."""
    from specializer.passes.choose_variants import Variant

    if not _xt_ok(g, op):
        return [Variant({"XT": False}, 0.0, 0)]
    x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
    r, k = w.shape
    n = x.size // k
    macs = n * r * k
    out = [Variant({"XT": True}, macs * 1.26 + n * r * 12, 0)]
    if _ip_ok(g, op):
        blocks = -(-r // default_variant(k, r)["RB"])
        out.append(Variant({"XT": True, "IP": True}, macs * 1.26 + n * r * 12 + n * blocks * (k // 4), 0))
    return out + [Variant({"XT": False}, macs * 1.56 + n * r * 12, 0)]


def _ip_ok(g, op) -> bool:
    """XT in place: whole input words per row (rows stay aligned) and an input whose bytes die at this layer."""
    from specializer.passes.liveness import dies_at

    return g.t(op.inputs[1]).shape[1] % 4 == 0 and dies_at(g, op, op.inputs[0])


def clobbers(g, op) -> tuple:
    return (0,) if template_args(g, op)["IP"] else ()


def _xt_ok(g, op) -> bool:
    """The XT form (fully_connected_xt_s8_dsp.c.in): at least two input words, and 256 x every reachable
    accumulator (bias folded, raw inputs) inside int32, the per-row start constant too."""
    wq, folded, _ = _parts(g, op)
    if wq.shape[1] < 8:
        return False
    bound = np.abs(folded) + 128 * np.abs(wq).sum(axis=1)
    return bool(np.all(bound < XT_LIMIT))


def _uniform(rq):
    """The requantization constants when every row has the same ones (then they are baked into the code)."""
    cols = rq.channels(0, len(rq.a))
    if all(np.all(c == c[0]) for c in cols):
        return tuple(int(c[0]) for c in cols)
    return None


def build_stream(g, op, args: dict) -> np.ndarray:
    wq, folded, rq = _parts(g, op)
    r, k = wq.shape
    k4 = k // 4 * 4
    parts = []
    rb = args["RB"]
    for r0 in range(0, r, rb):
        r1 = min(r0 + rb, r)
        n = r1 - r0
        blk = wq[r0:r1, :k4].reshape(n, k4 // 4, 4)
        if args["XT"]:
            odd = wq[r0:r1, 1:k4:2].sum(axis=1)
            start = 256 * (folded[r0:r1] + 127 * odd)
            if args["IP"]:  # the kernel feeds ~A - 1 for A: add back the words' lanes (256 w1 + w0 + 128, ...)
                start = _wrap32(start + (256 * blk[..., 1] + blk[..., 0] + 128 + 256 * blk[..., 3] + blk[..., 2]
                                         + 128).sum(axis=1))
            parts.append(start)
            parts.append(interleave(pack8(blk[..., 0] + 128, blk[..., 1], blk[..., 2] + 128,
                                          blk[..., 3]).astype(np.int64)))
            parts.append(256 * wq[r0:r1, k4:].T.reshape(-1))
        else:
            parts.append(folded[r0:r1])
            parts.append(interleave(pack8(blk[..., 0], blk[..., 1], blk[..., 2], blk[..., 3]).astype(np.int64)))
            parts.append(wq[r0:r1, k4:].T.reshape(-1))
        if args["UNIFORM"] is None:
            parts += rq.channels(r0, r1)
    return finish_stream(parts)


def _wrap32(v):
    """int64 values as the int32 words with the same low 32 bits (the kernel's sums wrap like the hardware's)."""
    return (np.asarray(v, dtype=np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)


def reorder(g, op):
    return add_stream(g, op, build_stream(g, op, template_args(g, op)), "fc_stream")


def variant(args: dict) -> str:
    return variant_name(n=args["N"], k=args["K"], r=args["R"], b=args["RB"], u=args["UNROLL"],
                        xt="" if args["XT"] else None, ip="" if args["IP"] else None, rq=args["RQ"][0]) + "__dsp"


def scratch_bytes(g, op) -> int:
    a = template_args(g, op)
    return 2 * (a["K"] // 4 * 4) if a["XT"] and not a["IP"] else 0


def emit(ctx):
    op = ctx.op
    args = template_args(ctx.g, op)
    if args["IP"] and 0 not in (op.kernel.clobbers if op.kernel is not None else ()):
        raise IRError(f"op #{op.index} FULLY_CONNECTED: the in-place XT form without the plan's leave to overwrite "
                      "its input")
    fn = ctx.fn(template=XT_TEMPLATE if args["XT"] else None, variant=variant(args), **args)
    x, y = ctx.inp(0), ctx.out()
    extra = f", {ctx.scratch('int32_t')}" if args["XT"] and not args["IP"] else ""
    ctx.call(f"{fn}({ctx.ptr(x.id)}, {ctx.ptr(op.stream)}, {ctx.ptr(y.id)}, {y.quant.zero_point[0]}{extra});")


ENTRY = KernelEntry(name="fully_connected_s8_dsp", ops=("FULLY_CONNECTED",), template=TEMPLATE, emit=emit,
                    reject=reject, template_args=template_args, scratch_bytes=scratch_bytes, priority=10,
                    generic=False,
                    requires=frozenset({"dsp"}), reorder=reorder, variants=variants, clobbers=clobbers)
