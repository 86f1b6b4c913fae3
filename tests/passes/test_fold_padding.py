"""fold_padding: PAD (with the input zero point) -> CONV_2D / DEPTHWISE_CONV_2D becomes one conv with explicit
padding. Structure (the PAD is gone, the conv carries the summed padding) and numerics (bit-exact with TFLM on the
original, unfolded model); negative cases where the pass must not fire.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.frontend import load_model
from specializer.pipeline import run_pipeline
from specializer.tflite_writer import ModelBuilder
from spz_testutil import assert_bitexact


def _pad_conv_model(rng, kind, padding, pads, stride=(1, 1), dilation=(1, 1), k=(3, 3), pad_kind="PAD",
                    pad_value_delta=0, c=5, mult=2, hw=(7, 6)):
    """x -> PAD(pads) -> p -> CONV_2D/DEPTHWISE_CONV_2D/MAX_POOL_2D -> y."""
    mb = ModelBuilder()
    s_x, zp = 0.05, int(rng.integers(-128, 128))
    shape = (1, hw[0], hw[1], c)
    x = mb.input("x", shape, scale=s_x, zero_point=zp)
    pt = mb.const("pads", np.asarray(pads, dtype=np.int32).reshape(4, 2))
    pshape = tuple(d + int(a) + int(b) for d, (a, b) in zip(shape, np.asarray(pads).reshape(4, 2)))
    p = mb.tensor("p", pshape, scale=s_x, zero_point=zp)
    if pad_kind == "PADV2":
        cv = mb.const("cv", np.asarray([zp + pad_value_delta], dtype=np.int8), scale=s_x, zero_point=zp)
        mb.op("PADV2", [x, pt, cv], [p])
    else:
        mb.op("PAD", [x, pt], [p])
    ph, pw = pshape[1], pshape[2]
    oh = ops.conv_output_size(ph, k[0], stride[0], dilation[0], padding)
    ow = ops.conv_output_size(pw, k[1], stride[1], dilation[1], padding)
    if kind == "MAX_POOL_2D":
        y = mb.tensor("y", (pshape[0], oh, ow, pshape[3]), scale=s_x, zero_point=zp)
        mb.op(kind, [p], [y], ops.Pool2D(padding=padding, stride_h=stride[0], stride_w=stride[1],
                                         filter_h=k[0], filter_w=k[1]))
    else:
        ic = pshape[3]
        oc = ic * mult if kind == "DEPTHWISE_CONV_2D" else 4
        wshape = (1, k[0], k[1], oc) if kind == "DEPTHWISE_CONV_2D" else (oc, k[0], k[1], ic)
        ws = (10 ** rng.uniform(-3, -1, oc)).astype(np.float32)
        w = mb.const("w", rng.integers(-127, 128, wshape).astype(np.int8), scale=ws,
                     axis=3 if kind == "DEPTHWISE_CONV_2D" else 0)
        b = mb.const("b", rng.integers(-5000, 5000, oc).astype(np.int32), scale=(s_x * ws).astype(np.float32))
        out_s = float(s_x * np.median(ws) * 74 * 74 * np.sqrt(np.prod(wshape[1:]) if kind == "CONV_2D"
                                                                   else k[0] * k[1]) / 40)
        y = mb.tensor("y", (pshape[0], oh, ow, oc), scale=out_s, zero_point=int(rng.integers(-128, 128)))
        common = dict(padding=padding, stride_h=stride[0], stride_w=stride[1], dilation_h=dilation[0],
                      dilation_w=dilation[1], activation="RELU")
        attrs = (ops.DepthwiseConv2D(depth_multiplier=mult, **common) if kind == "DEPTHWISE_CONV_2D"
                 else ops.Conv2D(**common))
        mb.op(kind, [p, w, b], [y], attrs)
    mb.output(y)
    return mb.build(), shape, zp


def _after_fold(data):
    return run_pipeline(load_model(data), stop_after="fold_padding")


def _inputs(rng, shape, zp):
    return [[rng.integers(-128, 128, shape).astype(np.int8)],
            [rng.integers(max(-128, zp - 15), min(127, zp + 15) + 1, shape).astype(np.int8)]]


CASES = [
    ("CONV_2D", "VALID", [[0, 0], [1, 1], [1, 1], [0, 0]], (1, 1), (1, 1), (3, 3), "PAD"),
    ("CONV_2D", "VALID", [[0, 0], [0, 1], [2, 0], [0, 0]], (2, 2), (1, 1), (3, 2), "PAD"),  # asymmetric, MobileNet
    ("CONV_2D", "SAME", [[0, 0], [1, 2], [0, 3], [0, 0]], (2, 1), (1, 2), (3, 3), "PADV2"),
    ("DEPTHWISE_CONV_2D", "VALID", [[0, 0], [1, 1], [1, 1], [0, 0]], (2, 2), (1, 1), (3, 3), "PAD"),
    ("DEPTHWISE_CONV_2D", "SAME", [[0, 0], [2, 0], [1, 1], [0, 0]], (1, 3), (2, 1), (5, 3), "PADV2"),
    ("DEPTHWISE_CONV_2D", "VALID", [[0, 0], [3, 3], [0, 0], [0, 0]], (1, 1), (3, 1), (1, 4), "PAD"),
]


@pytest.mark.parametrize("kind,padding,pads,stride,dilation,k,pad_kind", CASES)
def test_pad_folds_into_conv(tmp_path, kind, padding, pads, stride, dilation, k, pad_kind):
    rng = np.random.default_rng(zlib.crc32(repr((kind, padding, pads, k)).encode()))
    data, shape, zp = _pad_conv_model(rng, kind, padding, pads, stride, dilation, k, pad_kind)
    g = _after_fold(data)
    assert [op.kind for op in g.ops] == [kind]
    conv = g.ops[0]
    assert conv.attrs.padding == "EXPLICIT" and conv.attrs.explicit_padding is not None
    own = ops.explicit_padding(ops.Conv2D(padding=padding, stride_h=stride[0], stride_w=stride[1],
                                          dilation_h=dilation[0], dilation_w=dilation[1]),
                               (shape[1] + sum(pads[1]), shape[2] + sum(pads[2])),
                               tuple(g.t(conv.outputs[0]).shape[1:3]), k)
    assert conv.attrs.explicit_padding == (own[0] + pads[1][0], own[1] + pads[1][1], own[2] + pads[2][0],
                                           own[3] + pads[2][1])
    lowered, _ = specializer.api.lower(data)
    assert all(op.kind != pad_kind for op in lowered.ops)
    assert_bitexact(data, _inputs(rng, shape, zp), tmp_path)


def test_folded_random(tmp_path, sweep):
    """Random PAD amounts and conv geometries: always folded, always bit-exact."""
    rng = np.random.default_rng(77)
    for i in range(sweep(10)):
        kind = ("CONV_2D", "DEPTHWISE_CONV_2D")[i % 2]
        pads = [[0, 0], list(rng.integers(0, 4, 2)), list(rng.integers(0, 4, 2)), [0, 0]]
        k = tuple(int(v) for v in rng.integers(1, 6, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        padding = str(rng.choice(["SAME", "VALID"]))
        data, shape, zp = _pad_conv_model(rng, kind, padding, pads, stride, (1, 1), k, c=int(rng.integers(1, 8)),
                                          hw=(int(rng.integers(5, 10)), int(rng.integers(5, 10))))
        assert [op.kind for op in _after_fold(data).ops] == [kind]
        assert_bitexact(data, _inputs(rng, shape, zp), tmp_path / f"c{i}")


@pytest.mark.parametrize("why,kw", [
    ("max pool skips padded taps", dict(kind="MAX_POOL_2D", pads=[[0, 0], [1, 1], [1, 1], [0, 0]])),
    ("pads the channel axis", dict(kind="CONV_2D", pads=[[0, 0], [1, 1], [1, 1], [0, 2]])),
    ("pads the batch axis", dict(kind="DEPTHWISE_CONV_2D", pads=[[1, 0], [1, 1], [0, 0], [0, 0]])),
    ("PADV2 value is not the zero point", dict(kind="CONV_2D", pads=[[0, 0], [1, 1], [1, 1], [0, 0]],
                                               pad_kind="PADV2", pad_value_delta=1)),
])
def test_pad_not_folded(tmp_path, why, kw):
    rng = np.random.default_rng(3)
    kind = kw.pop("kind")
    data, shape, zp = _pad_conv_model(rng, kind, "VALID", kw.pop("pads"), **kw)
    g = _after_fold(data)
    assert [op.kind for op in g.ops][0] in ("PAD", "PADV2"), why
    assert getattr(g.ops[-1].attrs, "explicit_padding", None) is None
    assert_bitexact(data, _inputs(rng, shape, zp), tmp_path)  # the unfolded pair stays exact too


def test_pad_with_two_consumers_not_folded():
    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 2), scale=0.1, zero_point=3)
    pt = mb.const("pads", np.asarray([[0, 0], [1, 1], [1, 1], [0, 0]], dtype=np.int32))
    p = mb.tensor("p", (1, 6, 6, 2), scale=0.1, zero_point=3)
    mb.op("PAD", [x, pt], [p])
    w = mb.const("w", np.ones((2, 3, 3, 2), dtype=np.int8), scale=0.01)
    y = mb.tensor("y", (1, 4, 4, 2), scale=0.2, zero_point=0)
    mb.op("CONV_2D", [p, w, None], [y], ops.Conv2D(padding="VALID"))
    mb.output(y)
    mb.output(p)
    g = _after_fold(mb.build())
    assert [op.kind for op in g.ops] == ["PAD", "CONV_2D"]
