"""Models the project builds itself with its TFLite writer: the `make demo` model and benchmark seeds.

How it works
1. A network is a list of float layers with seeded random weights (He-normal convolutions, small biases).
2. It is run in float (numpy) on seeded random calibration images; each layer's activation range gives its
   output scale/zero point (ReLU outputs: zero point -128, scale max/255; others asymmetric min..max).
3. Weights are quantized symmetrically per output channel (per tensor for FULLY_CONNECTED), biases to int32 with
   scale input_scale * weight_scale, and the int8 model is written with `tflite_writer.ModelBuilder`.
Everything is deterministic: same seed and numpy version -> byte-identical .tflite.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import ops
from .tflite_writer import ModelBuilder


# ---- float reference layers (NHWC, batch 1) ----------------------------------------------------------------
def _pad_same(x, kh, kw, sh, sw):
    h, w = x.shape[1:3]
    oh, ow = -(-h // sh), -(-w // sw)
    ph = max((oh - 1) * sh + kh - h, 0)
    pw = max((ow - 1) * sw + kw - w, 0)
    return np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


def _conv(x, w, b, stride, padding, depthwise=False):
    kh, kw = w.shape[1:3]
    if padding == "SAME":
        x = _pad_same(x, kh, kw, stride, stride)
    h, wd = x.shape[1:3]
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    cols = np.stack([x[:, i:i + oh * stride:stride, j:j + ow * stride:stride, :]
                     for i in range(kh) for j in range(kw)], axis=3)  # 1,oh,ow,k,cin
    if depthwise:  # w: 1,kh,kw,c
        return np.einsum("nhwkc,kc->nhwc", cols, w.reshape(kh * kw, -1)) + b
    return np.einsum("nhwkc,okc->nhwo", cols, w.reshape(w.shape[0], kh * kw, -1)) + b


def _pool(x, k, stride, kind):
    h, w = x.shape[1:3]
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    win = np.stack([x[:, i:i + oh * stride:stride, j:j + ow * stride:stride, :] for i in range(k) for j in range(k)])
    return win.max(0) if kind == "max" else win.mean(0)


@dataclass
class Layer:
    kind: str  # conv, dwconv, maxpool, avgpool, fc, flatten, softmax
    w: Optional[np.ndarray] = None
    b: Optional[np.ndarray] = None
    stride: int = 1
    padding: str = "SAME"
    relu: bool = False
    k: int = 2


def _forward(layers, x):
    acts = []
    for L in layers:
        if L.kind in ("conv", "dwconv"):
            x = _conv(x, L.w, L.b, L.stride, L.padding, depthwise=L.kind == "dwconv")
            if L.relu:
                x = np.maximum(x, 0)
        elif L.kind in ("maxpool", "avgpool"):
            x = _pool(x, L.k, L.stride, L.kind[:3])
        elif L.kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif L.kind == "fc":
            x = x @ L.w.T + L.b
            if L.relu:
                x = np.maximum(x, 0)
        elif L.kind == "softmax":
            e = np.exp(x - x.max(-1, keepdims=True))
            x = e / e.sum(-1, keepdims=True)
        acts.append(x)
    return acts


def _range_quant(lo, hi, relu):
    if relu:
        hi = float(f"{max(hi, 1e-3):.3g}")
        return hi / 255.0, -128
    lo, hi = min(lo, 0.0), max(hi, 1e-3)
    scale = (hi - lo) / 255.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def build_int8(layers, in_shape, rng, name_prefix="l", calib=16, in_scale=1 / 128, in_zp=0) -> bytes:
    """Calibrate `layers` in float on random images and write the int8 TFLite model."""
    xs = rng.integers(-128, 128, size=(calib, *in_shape[1:])).astype(np.float32)
    xs = (xs - in_zp) * in_scale
    acts = [_forward(layers, xs[i:i + 1]) for i in range(calib)]
    mb = ModelBuilder(description="specializer.zoo")
    cur = mb.input("input", in_shape, "int8", in_scale, in_zp)
    cur_q = (in_scale, in_zp)
    shape = tuple(in_shape)
    for i, L in enumerate(layers):
        vals = np.concatenate([a[i].reshape(-1) for a in acts])
        lname = f"{name_prefix}{i}_{L.kind}"
        if L.kind in ("maxpool", "avgpool", "flatten"):
            if L.kind == "flatten":
                shape = (shape[0], int(np.prod(shape[1:])))
                out = mb.tensor(lname, shape, "int8", *cur_q)
                mb.op("RESHAPE", [cur, mb.const(lname + "/shape", np.asarray(shape, np.int32))], [out],
                      ops.Reshape(new_shape=shape))
            else:
                shape = (1, (shape[1] - L.k) // L.stride + 1, (shape[2] - L.k) // L.stride + 1, shape[3])
                out = mb.tensor(lname, shape, "int8", *cur_q)
                mb.op("MAX_POOL_2D" if L.kind == "maxpool" else "AVERAGE_POOL_2D", [cur], [out],
                      ops.Pool2D(padding="VALID", stride_h=L.stride, stride_w=L.stride, filter_h=L.k, filter_w=L.k))
            cur = out
            continue
        if L.kind == "softmax":
            out = mb.tensor(lname, shape, "int8", 1 / 256, -128)
            mb.op("SOFTMAX", [cur], [out], ops.Softmax(beta=1.0))
            cur = out
            continue
        oq = _range_quant(float(vals.min()), float(vals.max()), L.relu)
        per_channel = L.kind != "fc"
        axis = 3 if L.kind == "dwconv" else 0
        red = tuple(a for a in range(L.w.ndim) if a != axis)
        wmax = np.abs(L.w).max(axis=red) if per_channel else np.abs(L.w).max()
        wscale = np.maximum(wmax, 1e-8) / 127.0
        bshape = [1] * L.w.ndim
        if per_channel:
            bshape[axis] = -1
        wq = np.clip(np.round(L.w / np.reshape(wscale, bshape)), -127, 127).astype(np.int8)
        bscale = cur_q[0] * np.atleast_1d(wscale)
        bq = np.round(L.b / (bscale if per_channel else bscale[0])).astype(np.int32)
        wt = mb.const(lname + "/w", wq, scale=np.atleast_1d(wscale).astype(np.float32), zero_point=0, axis=axis)
        bt = mb.const(lname + "/b", bq, scale=bscale.astype(np.float32), zero_point=0)
        act = "RELU" if L.relu else "NONE"
        if L.kind == "fc":
            shape = (shape[0], L.w.shape[0])
            out = mb.tensor(lname, shape, "int8", *oq)
            mb.op("FULLY_CONNECTED", [cur, wt, bt], [out], ops.FullyConnected(activation=act))
        else:
            kh, kw = L.w.shape[1:3]
            oh = ops.conv_output_size(shape[1], kh, L.stride, 1, L.padding)
            ow = ops.conv_output_size(shape[2], kw, L.stride, 1, L.padding)
            cout = L.w.shape[0] if L.kind == "conv" else L.w.shape[3]
            shape = (1, oh, ow, cout)
            out = mb.tensor(lname, shape, "int8", *oq)
            if L.kind == "conv":
                mb.op("CONV_2D", [cur, wt, bt], [out],
                      ops.Conv2D(padding=L.padding, stride_h=L.stride, stride_w=L.stride, activation=act))
            else:
                mb.op("DEPTHWISE_CONV_2D", [cur, wt, bt], [out],
                      ops.DepthwiseConv2D(padding=L.padding, stride_h=L.stride, stride_w=L.stride,
                                          depth_multiplier=1, activation=act))
        cur, cur_q = out, oq
    mb.output(cur)
    return mb.build()


def _he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def cifar10_seed(seed: int = 2018) -> bytes:
    """The CMSIS-NN paper's CIFAR-10 CNN (Lai, Suda, Chandra 2018) with seeded random weights.

    conv 5x5 3->32 (SAME) + ReLU, maxpool 2x2/2, conv 5x5 32->32 + ReLU, avgpool 2x2/2, conv 5x5 32->64 + ReLU,
    avgpool 2x2/2, fully connected 1024->10 logits. 12.3 M MACs (24.6 MOps).
    """
    rng = np.random.default_rng(seed)
    layers = [
        Layer("conv", _he(rng, (32, 5, 5, 3), 75), (rng.standard_normal(32) * 0.1).astype(np.float32), relu=True),
        Layer("maxpool", k=2, stride=2),
        Layer("conv", _he(rng, (32, 5, 5, 32), 800), (rng.standard_normal(32) * 0.1).astype(np.float32), relu=True),
        Layer("avgpool", k=2, stride=2),
        Layer("conv", _he(rng, (64, 5, 5, 32), 800), (rng.standard_normal(64) * 0.1).astype(np.float32), relu=True),
        Layer("avgpool", k=2, stride=2),
        Layer("flatten"),
        Layer("fc", (rng.standard_normal((10, 1024)) * np.sqrt(1 / 1024)).astype(np.float32),
              (rng.standard_normal(10) * 0.1).astype(np.float32)),
    ]
    return build_int8(layers, (1, 32, 32, 3), rng)


def demo_kws(seed: int = 7) -> bytes:
    """A small keyword-spotting DS-CNN (49x10 MFCC input, 12 classes) for `make demo`: conv 10x4/2 -> 2 x
    (depthwise 3x3 + pointwise 1x1) -> global average pool -> fully connected -> softmax. Random weights."""
    rng = np.random.default_rng(seed)
    c = 24
    layers = [
        Layer("conv", _he(rng, (c, 10, 4, 1), 40), (rng.standard_normal(c) * 0.1).astype(np.float32), stride=2,
              relu=True),
        Layer("dwconv", _he(rng, (1, 3, 3, c), 9), (rng.standard_normal(c) * 0.1).astype(np.float32), relu=True),
        Layer("conv", _he(rng, (c, 1, 1, c), c), (rng.standard_normal(c) * 0.1).astype(np.float32), relu=True),
        Layer("dwconv", _he(rng, (1, 3, 3, c), 9), (rng.standard_normal(c) * 0.1).astype(np.float32), relu=True),
        Layer("conv", _he(rng, (c, 1, 1, c), c), (rng.standard_normal(c) * 0.1).astype(np.float32), relu=True),
        Layer("avgpool", k=5, stride=5),
        Layer("flatten"),
        Layer("fc", (rng.standard_normal((12, 5 * 1 * c)) * np.sqrt(1 / (5 * c))).astype(np.float32),
              (rng.standard_normal(12) * 0.1).astype(np.float32)),
        Layer("softmax"),
    ]
    return build_int8(layers, (1, 49, 10, 1), rng)


MODELS = {"demo_kws": demo_kws, "cifar10_seed": cifar10_seed}


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


@dataclass
class _GruNet:
    """The float GRU of the zoo's keyword spotter (seeded weights) and the ranges of its tensors over a calibration
    set: `ranges[name][t]` = (min, max) of tensor `name` at time step t ("logits" has a single entry)."""

    wx: np.ndarray
    wh: np.ndarray
    bx: np.ndarray
    bh: np.ndarray
    wo: np.ndarray
    bo: np.ndarray
    in_q: tuple
    steps: int
    feat: int
    hidden: int
    classes: int
    ranges: dict

    def quant(self, name: str, t: Optional[int] = None):
        """(scale, zero point) of `name` at step t, or over every step when t is None (one tensor per loop body)."""
        per_step = self.ranges[name]
        lo, hi = per_step[t] if t is not None else (min(r[0] for r in per_step), max(r[1] for r in per_step))
        return _range_quant(lo, hi, False)


def _gru_net(seed: int, steps: int, feat: int, hidden: int, classes: int) -> _GruNet:
    rng = np.random.default_rng(seed)
    H = hidden
    wx = rng.normal(0, 1 / np.sqrt(feat), (3 * H, feat)).astype(np.float32)
    wh = rng.normal(0, 1 / np.sqrt(H), (3 * H, H)).astype(np.float32)
    bx = rng.normal(0, 0.1, 3 * H).astype(np.float32)
    bh = rng.normal(0, 0.1, 3 * H).astype(np.float32)
    wo = rng.normal(0, 1 / np.sqrt(H), (classes, H)).astype(np.float32)
    bo = rng.normal(0, 0.1, classes).astype(np.float32)
    in_scale, in_zp = 1 / 32, 0
    calib = rng.integers(-128, 128, size=(16, steps, feat)).astype(np.float32) * in_scale

    # float pass over the calibration set: the range of every tensor at every step
    ranges: dict = {}

    def seen(name, t, v):
        per_step = ranges.setdefault(name, [(np.inf, -np.inf)] * (steps if t is not None else 1))
        k = t or 0
        per_step[k] = (min(per_step[k][0], float(v.min())), max(per_step[k][1], float(v.max())))

    for x in calib:
        h = np.zeros(H, np.float32)
        for t in range(steps):
            xp, hp = wx @ x[t] + bx, wh @ h + bh
            seen("xp", t, xp)
            seen("hp", t, hp)
            zp_, rp = xp[:H] + hp[:H], xp[H:2 * H] + hp[H:2 * H]
            seen("zpre", t, zp_)
            seen("rpre", t, rp)
            z, r = _sigmoid(zp_), _sigmoid(rp)
            rh = r * hp[2 * H:]
            seen("rh", t, rh)
            npre = xp[2 * H:] + rh
            seen("npre", t, npre)
            n = np.tanh(npre)
            zh, omz = z * h, 1 - z
            seen("zh", t, zh)
            seen("omz", t, omz)
            b_ = omz * n
            seen("omzn", t, b_)
            h = zh + b_
            seen("h", t, h)
        seen("logits", None, wo @ h + bo)
    return _GruNet(wx, wh, bx, bh, wo, bo, (in_scale, in_zp), steps, feat, hidden, classes, ranges)


class _GruWriter:
    """Writes GRU steps and the classifier on one builder (the main graph, or a WHILE body): one weight tensor per
    projection shared by every step (as the converter writes it), one bias per input scale."""

    SIG_Q, TANH_Q = (1 / 256, -128), (1 / 128, 0)

    def __init__(self, mb: ModelBuilder, net: _GruNet):
        self.mb, self.net, self.made = mb, net, {}
        self.one = self.axis = None

    def constants(self):
        """The constant 1 of `1 - z` (written before the initial state, so `gru_kws` stays byte-identical)."""
        self.one = self.mb.const("one", np.array([[127]], np.int8), scale=1 / 127, zero_point=0)

    def split_axis(self):
        """The SPLIT axis constant (written after the initial state)."""
        self.axis = self.mb.const("split_axis", np.array(1, np.int32))

    def fc_weights(self, tag, w, b, x_scale):
        ws = float(np.abs(w).max()) / 127
        if tag not in self.made:
            self.made[tag] = self.mb.const(f"{tag}_w", np.clip(np.round(w / ws), -127, 127).astype(np.int8),
                                           scale=ws)
        key = (tag, x_scale)
        if key not in self.made:
            self.made[key] = self.mb.const(f"{tag}_b{len(self.made)}", np.round(b / (x_scale * ws)).astype(np.int32),
                                           scale=x_scale * ws)
        return self.made[tag], self.made[key]

    def tensor(self, name, shape, sq):
        return self.mb.tensor(name, shape, "int8", sq[0], sq[1])

    def step(self, xt, h, h_q, q, sfx):
        """One GRU step from the input row `xt` and the state `h` (quantization `h_q`); `q(name)` gives the
        quantization of the step's tensors, `sfx` suffixes their names. Returns (new state, its quantization)."""
        mb, net, tensor, H = self.mb, self.net, self.tensor, self.net.hidden
        wq, bq = self.fc_weights("fx", net.wx, net.bx, net.in_q[0])
        xp = tensor(f"xp{sfx}", (1, 3 * H), q("xp"))
        mb.op("FULLY_CONNECTED", [xt, wq, bq], [xp], ops.FullyConnected())
        wq, bq = self.fc_weights("fh", net.wh, net.bh, h_q[0])
        hp = tensor(f"hp{sfx}", (1, 3 * H), q("hp"))
        mb.op("FULLY_CONNECTED", [h, wq, bq], [hp], ops.FullyConnected())
        xs = [tensor(f"x{g}{sfx}", (1, H), q("xp")) for g in "zrn"]
        hs = [tensor(f"h{g}{sfx}", (1, H), q("hp")) for g in "zrn"]
        mb.op("SPLIT", [self.axis, xp], xs, ops.Split(num_splits=3))
        mb.op("SPLIT", [self.axis, hp], hs, ops.Split(num_splits=3))
        zpre, rpre = tensor(f"zpre{sfx}", (1, H), q("zpre")), tensor(f"rpre{sfx}", (1, H), q("rpre"))
        mb.op("ADD", [xs[0], hs[0]], [zpre], ops.Elementwise())
        mb.op("ADD", [xs[1], hs[1]], [rpre], ops.Elementwise())
        z, r = tensor(f"z{sfx}", (1, H), self.SIG_Q), tensor(f"r{sfx}", (1, H), self.SIG_Q)
        mb.op("LOGISTIC", [zpre], [z])
        mb.op("LOGISTIC", [rpre], [r])
        rh = tensor(f"rh{sfx}", (1, H), q("rh"))
        mb.op("MUL", [r, hs[2]], [rh], ops.Elementwise())
        npre = tensor(f"npre{sfx}", (1, H), q("npre"))
        mb.op("ADD", [xs[2], rh], [npre], ops.Elementwise())
        n = tensor(f"n{sfx}", (1, H), self.TANH_Q)
        mb.op("TANH", [npre], [n])
        zh = tensor(f"zh{sfx}", (1, H), q("zh"))
        mb.op("MUL", [z, h], [zh], ops.Elementwise())
        omz = tensor(f"omz{sfx}", (1, H), q("omz"))
        mb.op("SUB", [self.one, z], [omz], ops.Elementwise())
        omzn = tensor(f"omzn{sfx}", (1, H), q("omzn"))
        mb.op("MUL", [omz, n], [omzn], ops.Elementwise())
        hn_q = q("h")
        hn = tensor(f"h{sfx}", (1, H), hn_q)
        mb.op("ADD", [zh, omzn], [hn], ops.Elementwise())
        return hn, hn_q

    def classifier(self, h, h_q):
        """FULLY_CONNECTED to the classes and SOFTMAX; marks the probabilities as the model's output."""
        net = self.net
        wq, bq = self.fc_weights("out", net.wo, net.bo, h_q[0])
        logits = self.tensor("logits", (1, net.classes), net.quant("logits", 0))
        self.mb.op("FULLY_CONNECTED", [h, wq, bq], [logits], ops.FullyConnected())
        prob = self.tensor("prob", (1, net.classes), (1 / 256, -128))
        self.mb.op("SOFTMAX", [logits], [prob], ops.Softmax(beta=1.0))
        self.mb.output(prob)


def gru_kws(seed: int = 11, steps: int = 16, feat: int = 10, hidden: int = 32, classes: int = 12,
            form: str = "unrolled", shared_quant: Optional[bool] = None) -> bytes:
    """A GRU keyword spotter (the seed talk's KWS with GRU) as TFLite converts a Keras GRU (reset_after).

    form="unrolled" (`unroll=True`): per time step a STRIDED_SLICE of the input, two FULLY_CONNECTED (input and
    state projections, 3 x hidden each), SPLITs into the z / r / n gates, ADD + LOGISTIC for z and r, MUL + ADD +
    TANH for n, and h = z * h + (1 - z) * n (MUL, SUB from a constant 1, MUL, ADD); then a FULLY_CONNECTED
    classifier and SOFTMAX. The initial state is a constant zero tensor. Calibrated in float on random sequences
    like `build_int8`; every step's tensors get their own quantization (the state's too) unless `shared_quant`.

    form="while" (the converter's loop form): WHILE over (int32 counter i from 0, the input, h); the condition
    subgraph is `i < steps`, the body GATHERs row i of the input (tflite-micro refuses a STRIDED_SLICE with
    non-constant bounds) and computes one step as above; the classifier follows the loop. A loop body has one
    tensor per value for every iteration, so each tensor's quantization covers its range over all steps and the
    state keeps one quantization from the initial zeros to the last step (`shared_quant` is always true).
    Same seed -> same float weights and calibration in both forms; `shared_quant=True` makes the unrolled form
    quantized exactly like the WHILE form (same int8 outputs)."""
    if form not in ("unrolled", "while"):
        raise ValueError(f"gru_kws: form must be 'unrolled' or 'while', not {form!r}")
    if shared_quant is None:
        shared_quant = form == "while"
    if form == "while" and not shared_quant:
        raise ValueError("gru_kws: a WHILE body has one quantization per tensor for every step (shared_quant)")
    net = _gru_net(seed, steps, feat, hidden, classes)
    in_scale, in_zp = net.in_q
    H = hidden
    h0_q = net.quant("h") if shared_quant else (1 / 128, 0)
    h0_data = np.full((1, H), h0_q[1], np.int8)  # the real value 0

    if form == "while":
        return _gru_kws_while(net, h0_q, h0_data)

    mb = ModelBuilder(description="specializer.zoo gru_kws")
    x = mb.input("input", (1, steps, feat), "int8", in_scale, in_zp)
    w = _GruWriter(mb, net)
    w.constants()
    h, h_q = mb.const("h0", h0_data, scale=h0_q[0], zero_point=h0_q[1]), h0_q
    w.split_axis()
    for t in range(steps):
        xt = w.tensor(f"x{t}", (1, feat), (in_scale, in_zp))
        mb.op("STRIDED_SLICE", [x, mb.const(f"b{t}", np.array([0, t, 0], np.int32)),
                                mb.const(f"e{t}", np.array([1, t + 1, feat], np.int32)),
                                mb.const(f"s{t}", np.array([1, 1, 1], np.int32))], [xt],
              ops.StridedSlice(shrink_axis_mask=2))
        h, h_q = w.step(xt, h, h_q, (lambda name, t=t: net.quant(name, None if shared_quant else t)), t)
    w.classifier(h, h_q)
    return mb.build()


def _gru_kws_while(net: _GruNet, h_q, h0_data) -> bytes:
    steps, feat, H = net.steps, net.feat, net.hidden
    mb = ModelBuilder(description="specializer.zoo gru_kws_while")
    x = mb.input("input", (1, steps, feat), "int8", *net.in_q)
    i0 = mb.const("i0", np.array(0, np.int32))
    h0 = mb.const("h0", h0_data, scale=h_q[0], zero_point=h_q[1])
    loop_vars = [("i", (), "int32", None), ("input", (1, steps, feat), "int8", net.in_q), ("h", (1, H), "int8", h_q)]

    def params(sub):
        return [sub.tensor(nm, shp, dt, *(qq or (None, None))) for nm, shp, dt, qq in loop_vars]

    cond = mb.subgraph("gru_cond")
    ci = params(cond)
    flag = cond.tensor("i_lt_steps", (), "bool")
    cond.raw_op("LESS", [ci[0], cond.const("steps", np.array(steps, np.int32))], [flag])
    cond.inputs, cond.outputs = ci, [flag]

    body = mb.subgraph("gru_body")
    bi, bx, bh = params(body)
    inext = body.tensor("i_next", (), "int32")
    body.op("ADD", [bi, body.const("one_step", np.array(1, np.int32))], [inext], ops.Elementwise())
    xt = body.tensor("x_t", (1, feat), "int8", *net.in_q)
    body.op("GATHER", [bx, bi], [xt], ops.Gather(axis=1))
    w = _GruWriter(body, net)
    w.constants()
    w.split_axis()
    hn, hn_q = w.step(xt, bh, h_q, net.quant, "_t")
    assert hn_q == h_q
    body.inputs, body.outputs = [bi, bx, bh], [inext, bx, hn]

    outs = [mb.tensor(f"{nm}_out", shp, dt, *(qq or (None, None))) for nm, shp, dt, qq in loop_vars]
    mb.control_op("WHILE", [i0, x, h0], outs, cond=cond, body=body)
    _GruWriter(mb, net).classifier(outs[2], h_q)
    return mb.build()


def gru_kws_while(seed: int = 11, steps: int = 16, feat: int = 10, hidden: int = 32, classes: int = 12) -> bytes:
    """`gru_kws` in the converter's WHILE form (see `gru_kws`, form="while")."""
    return gru_kws(seed, steps, feat, hidden, classes, form="while")


# ---- int16x8: a KWS DS-CNN with 16-bit activations -------------------------------------------------------------
def _q16(vals) -> float:
    """Symmetric int16 scale (zero point 0, as TFLite's 16x8 mode requires) covering the calibrated range."""
    return max(float(np.abs(vals).max()), 1e-6) / 32767.0


def kws_dscnn_16x8(seed: int = 16, channels: int = 64, blocks: int = 2, classes: int = 12,
                   expose: bool = False) -> bytes:
    """A keyword-spotting DS-CNN in TFLite's 16x8 mode (16-bit activations, 8-bit weights), random weights.

    int8 input (1, 49, 10, 1) (MLPerf KWS's MFCC shape) -> QUANTIZE to int16 -> CONV_2D 10x4 stride 2 SAME (MLPerf KWS's
    first layer) + ReLU -> `blocks` x (DEPTHWISE_CONV_2D 3x3 + ReLU, CONV_2D 1x1 + ReLU) -> AVERAGE_POOL_2D over the
    whole 25x5 map -> RESHAPE -> FULLY_CONNECTED to `classes` logits -> SOFTMAX int16 -> QUANTIZE to an int8 output
    (scale 1/256, zero point -128, like the int8 zoo models). Quantized as the converter's 16x8 mode does: int16
    tensors symmetric (zero point 0) with the calibrated max |x| at 32767, int8 weights symmetric per output channel
    (per tensor for the fully connected layer), int64 biases at input scale x weight scale; the softmax writes 1/32768.
    Calibrated in float on 16 seeded random inputs (He-normal weights, small biases, so no layer saturates or dies).

    `expose=True` also marks every intermediate activation as a model output (after the probabilities), in graph
    order, to look at value spreads in tflite-micro. Deterministic: same arguments -> byte-identical .tflite."""
    rng = np.random.default_rng(seed)
    c = channels
    convs = [("conv", _he(rng, (c, 10, 4, 1), 40), (rng.standard_normal(c) * 0.1).astype(np.float32), 2)]
    for _ in range(blocks):
        convs.append(("dwconv", _he(rng, (1, 3, 3, c), 9), (rng.standard_normal(c) * 0.1).astype(np.float32), 1))
        convs.append(("conv", _he(rng, (c, 1, 1, c), c), (rng.standard_normal(c) * 0.1).astype(np.float32), 1))
    wo = (rng.standard_normal((classes, c)) * np.sqrt(2.0 / c)).astype(np.float32)
    bo = (rng.standard_normal(classes) * 0.1).astype(np.float32)
    in_shape, in_q = (1, 49, 10, 1), (0.25, 0)
    calib = rng.integers(-128, 128, size=(16, *in_shape[1:])).astype(np.float32) * in_q[0]

    # int8 weights, symmetric per output channel
    wquant = []
    for kind, w, _, _ in convs:
        axis = 3 if kind == "dwconv" else 0
        ws = np.maximum(np.abs(w).max(axis=tuple(a for a in range(4) if a != axis)), 1e-8) / 127.0
        bshape = [1, 1, 1, 1]
        bshape[axis] = -1
        wq = np.clip(np.round(w / ws.reshape(bshape)), -127, 127).astype(np.int8)
        wquant.append((wq, ws, axis, (wq * ws.reshape(bshape)).astype(np.float32)))

    # float pass with the int8 weights: the range of every activation over the calibration set
    peaks = [0.0] * len(convs)  # max |x| of every convolution's output (the pool keeps the last one's scale)
    pooled_f = []
    for x in calib:
        x = x[None]
        for i, (kind, _, b, stride) in enumerate(convs):
            x = np.maximum(_conv(x, wquant[i][3], b, stride, "SAME", depthwise=kind == "dwconv"), 0)
            peaks[i] = max(peaks[i], float(np.abs(x).max()))
        pooled_f.append(x.mean(axis=(1, 2))[0])
    pooled_f = np.array(pooled_f)
    # a global average of random features hardly changes from input to input: normalize them (a batch norm folded
    # into the classifier, as training would leave it) so the logits, and the softmax, depend on the input
    mu, sd = pooled_f.mean(0), pooled_f.std(0) + 1e-3
    wo = (0.5 * wo / sd[None, :]).astype(np.float32)
    bo = (bo - wo @ mu).astype(np.float32)
    wo_s = max(float(np.abs(wo).max()), 1e-8) / 127.0
    wo_q = np.clip(np.round(wo / wo_s), -127, 127).astype(np.int8)
    logit_peak = 1.5 * float(np.abs(pooled_f @ (wo_q * wo_s).T + bo).max())  # headroom: 16 inputs only

    mb = ModelBuilder(description="specializer.zoo kws_dscnn_16x8")
    exposed = []
    x8 = mb.input("input", in_shape, "int8", *in_q)
    s_cur = _q16(128 * in_q[0])  # the int8 input's whole range
    cur = mb.tensor("input_s16", in_shape, "int16", s_cur, 0)
    mb.op("QUANTIZE", [x8], [cur])
    exposed.append(cur)
    shape = in_shape
    for i, (kind, w, b, stride) in enumerate(convs):
        wq, ws, axis, _ = wquant[i]
        bscale = s_cur * ws.astype(np.float64)
        bq = np.round(b / bscale).astype(np.int64)
        name = f"l{i}_{kind}"
        wt = mb.const(name + "/w", wq, scale=ws.astype(np.float32), zero_point=0, axis=axis)
        bt = mb.const(name + "/b", bq, scale=bscale.astype(np.float32), zero_point=0)
        kh, kw = w.shape[1:3]
        shape = (1, ops.conv_output_size(shape[1], kh, stride, 1, "SAME"),
                 ops.conv_output_size(shape[2], kw, stride, 1, "SAME"), c)
        s_out = _q16(peaks[i])
        out = mb.tensor(name, shape, "int16", s_out, 0)
        if kind == "conv":
            mb.op("CONV_2D", [cur, wt, bt], [out],
                  ops.Conv2D(padding="SAME", stride_h=stride, stride_w=stride, activation="RELU"))
        else:
            mb.op("DEPTHWISE_CONV_2D", [cur, wt, bt], [out],
                  ops.DepthwiseConv2D(padding="SAME", stride_h=stride, stride_w=stride, depth_multiplier=1,
                                      activation="RELU"))
        cur, s_cur = out, s_out
        exposed.append(cur)
    pooled = mb.tensor("pool", (1, 1, 1, c), "int16", s_cur, 0)  # TFLM: a pool keeps its input's quantization
    mb.op("AVERAGE_POOL_2D", [cur], [pooled],
          ops.Pool2D(padding="VALID", filter_h=shape[1], filter_w=shape[2], stride_h=1, stride_w=1))
    flat = mb.tensor("flatten", (1, c), "int16", s_cur, 0)
    mb.op("RESHAPE", [pooled, mb.const("flatten/shape", np.array([1, c], np.int32))], [flat],
          ops.Reshape(new_shape=(1, c)))
    exposed.append(flat)
    wt = mb.const("fc/w", wo_q, scale=wo_s, zero_point=0)
    bt = mb.const("fc/b", np.round(bo / (s_cur * wo_s)).astype(np.int64), scale=s_cur * wo_s, zero_point=0)
    logits = mb.tensor("logits", (1, classes), "int16", _q16(logit_peak), 0)
    mb.op("FULLY_CONNECTED", [flat, wt, bt], [logits], ops.FullyConnected())
    exposed.append(logits)
    prob16 = mb.tensor("prob_s16", (1, classes), "int16", 1.0 / 32768, 0)
    mb.op("SOFTMAX", [logits], [prob16], ops.Softmax(beta=1.0))
    exposed.append(prob16)
    prob = mb.tensor("prob", (1, classes), "int8", 1.0 / 256, -128)
    mb.op("QUANTIZE", [prob16], [prob])
    mb.output(prob)
    if expose:
        for t in exposed:
            mb.output(t)
    return mb.build()
