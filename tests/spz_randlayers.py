"""Random single-layer generators shared by the kernel tests (host) and the simulator tests (Cortex-M).

Every generator adds one independent layer (its own input and output) to a ModelBuilder and returns
(input shapes and zero points, description); several layers per model keep compiles few. The parameter space
covers what specialized kernels must get right: kernels 1..7 (1xN, Nx1), strides 1..3 (stride > kernel),
dilations, SAME/VALID (asymmetric padding), channel counts that are not a multiple of 4, per-channel scales
over orders of magnitude, zero points at the extremes, every fused activation, batches, with and without bias,
and (`hostile`) quantization that defeats the fast requantization paths: huge biases, multipliers > 1.
"""
from __future__ import annotations

import numpy as np

from specializer import ops
from specializer.tflite_writer import ModelBuilder

ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
CHANNELS = (1, 2, 3, 4, 5, 7, 8, 9, 12, 16)
PER_MODEL = 8


def _zp(rng):
    return int(rng.choice([-128, 127, -127, 126, 0])) if rng.random() < 0.5 else int(rng.integers(-128, 128))


def output_quant(rng, act):
    """(scale, zero point) of an output that the activation does not clamp to a single value."""
    if act == "RELU_N1_TO_1":
        return float(10 ** rng.uniform(-2.5, -1.5)), int(rng.integers(-60, 61))
    if act == "RELU6":
        return float(6 / 255 * 10 ** rng.uniform(-0.3, 0.3)), (-128 if rng.random() < 0.5 else int(rng.integers(-128, 40)))
    if act == "RELU":
        return float(10 ** rng.uniform(-3, 0)), (-128 if rng.random() < 0.5 else int(rng.integers(-128, 60)))
    return float(10 ** rng.uniform(-3, 0)), _zp(rng)


def _geometry(rng, k_max=7, in_max=14):
    """(in_h, in_w, k_h, k_w, s_h, s_w, d_h, d_w, padding) with a non-empty output."""
    padding = str(rng.choice(["SAME", "VALID"]))
    dims = []
    for _ in range(2):
        k = int(rng.integers(1, k_max + 1)) if rng.random() < 0.8 else 1
        s = int(rng.integers(1, 4))
        d = int(rng.integers(1, 4)) if (rng.random() < 0.3 and k > 1) else 1
        eff = (k - 1) * d + 1
        lo = eff if padding == "VALID" else 1
        n = int(rng.integers(lo, max(lo, in_max) + 1)) if rng.random() < 0.85 else lo
        dims.append((n, k, s, d))
    (ih, kh, sh, dh), (iw, kw, sw, dw) = dims
    return ih, iw, kh, kw, sh, sw, dh, dw, padding


def _weight_scales(rng, n, per_channel):
    if not per_channel:
        return np.asarray([10 ** rng.uniform(-4, -1)], dtype=np.float32)
    base = rng.uniform(-4, -1.5)
    return (10 ** (base + rng.uniform(0, 2.5, n))).astype(np.float32)  # spans up to 2.5 orders of magnitude


HOSTILE = ("bigbias", "upscale", "dead", "tinyscale")


def add_conv_layer(mb: ModelBuilder, rng, tag: str, depthwise: bool, groups_ok: bool = True,
                   force: dict | None = None, hostile: bool = False, channels=CHANNELS) -> tuple:
    """Add one random conv/depthwise layer with its own input and output; returns (input shape, zp, desc).

    `hostile`: one of HOSTILE's quantizations that the fast requantization paths must refuse or survive."""
    f = force or {}
    CHANNELS = channels  # noqa: N806
    ih, iw, kh, kw, sh, sw, dh, dw, padding = f.get("geom") or _geometry(rng)
    batches = 2 if rng.random() < 0.2 else 1
    act = str(rng.choice(ACTS))
    out_s, out_zp = output_quant(rng, act)
    in_zp = _zp(rng)
    per_channel = rng.random() < 0.7
    if depthwise:
        in_c = int(rng.choice(CHANNELS))
        mult = int(f.get("mult", rng.integers(1, 5)))
        out_c = in_c * mult
        wshape = (1, kh, kw, out_c)
        taps = kh * kw
    else:
        groups = int(rng.choice([2, 3])) if (groups_ok and rng.random() < 0.15) else 1
        groups = f.get("groups", groups)
        fc = int(rng.choice(CHANNELS))
        in_c = fc * groups
        out_c = int(rng.choice(CHANNELS)) * groups
        wshape = (out_c, kh, kw, fc)
        taps = kh * kw * fc
    ws = _weight_scales(rng, out_c, per_channel)
    wq = rng.integers(-127, 128, size=wshape).astype(np.int8)
    if rng.random() < 0.2:  # small weights: exercises the low bits of the accumulator
        wq = (wq // 16).astype(np.int8)
    trouble = str(rng.choice(HOSTILE)) if hostile else None
    if trouble == "dead":  # output channels with all-zero weights
        dead = rng.random(out_c) < 0.4
        if depthwise:
            wq[..., dead] = 0
        else:
            wq[dead] = 0
    if trouble == "tinyscale" and per_channel:  # right shifts up to ~30 on some channels
        ws = (ws * np.where(rng.random(out_c) < 0.3, 10 ** rng.uniform(-7, -4, out_c), 1.0)).astype(np.float32)
    if trouble == "upscale":  # real multiplier > 1 (a left shift): tiny weights and a tiny output scale
        wq = (wq // 64).astype(np.int8)
    # accumulator spread (in quantized units) for full-range inputs; the input scale maps it to ~40 output steps
    acc_std = 74.0 * max(float(wq.astype(np.float64).std()), 1.0) * np.sqrt(taps)
    in_s = float(out_s * 40.0 / (float(np.median(ws)) * acc_std) * 10 ** rng.uniform(-0.5, 0.5))
    if trouble == "upscale":
        in_s = float(out_s * 10 ** rng.uniform(0.3, 1.5) / float(np.min(ws)))
    x = mb.input(f"x{tag}", (batches, ih, iw, in_c), scale=in_s, zero_point=in_zp)
    w = mb.const(f"w{tag}", wq, scale=ws, axis=3 if depthwise else 0)
    use_bias = depthwise or rng.random() < 0.75  # a bias-less DEPTHWISE_CONV_2D crashes the TFLM interpreter
    b = None
    if use_bias:
        bs = (in_s * ws.astype(np.float64)).astype(np.float32)
        bq = rng.uniform(-2, 2, size=out_c) * acc_std if rng.random() < 0.8 else np.zeros(out_c)
        if trouble == "bigbias":  # accumulators near 2^30: the doubled accumulator would overflow
            big = rng.random(out_c) < 0.5
            bq = np.where(big, rng.choice([-1, 1], out_c) * rng.uniform(2 ** 29, 2 ** 31 - 2 ** 24, out_c), bq)
        b = mb.const(f"b{tag}", bq.astype(np.int32), scale=np.broadcast_to(bs, (out_c,)), axis=0)
    oh = ops.conv_output_size(ih, kh, sh, dh, padding)
    ow = ops.conv_output_size(iw, kw, sw, dw, padding)
    y = mb.tensor(f"y{tag}", (batches, oh, ow, out_c), scale=out_s, zero_point=out_zp)
    if depthwise:
        attrs = ops.DepthwiseConv2D(padding=padding, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw,
                                    depth_multiplier=mult, activation=act)
        mb.op("DEPTHWISE_CONV_2D", [x, w, b], [y], attrs)
    else:
        attrs = ops.Conv2D(padding=padding, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw,
                           activation=act)
        mb.op("CONV_2D", [x, w, b], [y], attrs)
    mb.output(y)
    desc = (f"{'dw' if depthwise else 'conv'} in={batches}x{ih}x{iw}x{in_c} w={wshape} s={sh},{sw} d={dh},{dw} "
            f"{padding} {act} zp={in_zp}/{out_zp} pc={per_channel} bias={use_bias}"
            + (f" hostile={trouble}" if trouble else ""))
    return (batches, ih, iw, in_c), in_zp, desc


def random_inputs(rng, shapes_zps, n_sets=2):
    """Full-range int8 inputs, then inputs in a narrow band around the zero point (no saturation)."""
    sets = []
    for k in range(n_sets):
        xs = []
        for shape, zp in shapes_zps:
            if k == 0:
                xs.append(rng.integers(-128, 128, size=shape).astype(np.int8))
            else:
                lo, hi = max(-128, zp - 20), min(127, zp + 20)
                xs.append(rng.integers(lo, hi + 1, size=shape).astype(np.int8))
        sets.append(xs)
    return sets




def add_fc_layer(mb: ModelBuilder, rng, tag: str, hostile: bool = False) -> tuple:
    """One random FULLY_CONNECTED layer: depth 1..300 (not a multiple of 4 too), 1..70 rows, 1-3 input rows."""
    k = int(rng.choice([1, 3, 4, 5, 8, 16, 17, 31, 64, 100, 128, 257, 300])) if rng.random() < 0.8 else int(rng.integers(1, 300))
    r = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 16, 33, 64, 70]))
    rows = int(rng.choice([1, 1, 1, 2, 3]))
    act = str(rng.choice(ACTS))
    out_s, out_zp = output_quant(rng, act)
    in_zp = _zp(rng)
    per_channel = rng.random() < 0.3
    ws = _weight_scales(rng, r, per_channel)
    wq = rng.integers(-127, 128, size=(r, k)).astype(np.int8)
    trouble = str(rng.choice(HOSTILE)) if hostile else None
    if trouble == "dead":
        wq[rng.random(r) < 0.4] = 0
    acc_std = 74.0 * max(float(wq.astype(np.float64).std()), 1.0) * np.sqrt(k)
    in_s = float(out_s * 40.0 / (float(np.median(ws)) * acc_std) * 10 ** rng.uniform(-0.5, 0.5))
    if trouble == "upscale":
        wq = (wq // 64).astype(np.int8)
        in_s = float(out_s * 10 ** rng.uniform(0.3, 1.5) / float(np.min(ws)))
    x = mb.input(f"x{tag}", (rows, k), scale=in_s, zero_point=in_zp)
    w = mb.const(f"w{tag}", wq, scale=ws, axis=0)
    b = None
    if rng.random() < 0.8:
        bq = rng.uniform(-2, 2, size=r) * acc_std
        if trouble == "bigbias":
            bq = np.where(rng.random(r) < 0.5, rng.choice([-1, 1], r) * rng.uniform(2 ** 29, 2 ** 31 - 2 ** 24, r), bq)
        bs = (in_s * ws.astype(np.float64)).astype(np.float32)
        b = mb.const(f"b{tag}", bq.astype(np.int32), scale=np.broadcast_to(bs, (r,)), axis=0)
    y = mb.tensor(f"y{tag}", (rows, r), scale=out_s, zero_point=out_zp)
    mb.op("FULLY_CONNECTED", [x, w, b], [y], ops.FullyConnected(activation=act))
    mb.output(y)
    return (rows, k), in_zp, (f"fc {rows}x{k} -> {r} {act} zp={in_zp}/{out_zp} pc={per_channel} bias={b is not None}"
                              + (f" hostile={trouble}" if trouble else ""))


def add_add_layer(mb: ModelBuilder, rng, tag: str, kind: str = "ADD") -> tuple:
    """One same-shape ADD/SUB: odd element counts, scales over orders of magnitude, every activation."""
    shape = (1, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.choice([1, 3, 4, 8, 16, 17])))
    s1, s2 = float(10 ** rng.uniform(-3, 0)), float(10 ** rng.uniform(-3, 0))
    so = max(s1, s2) * float(10 ** rng.uniform(-0.7, 1.3))
    act = str(rng.choice(ACTS))
    zo = _zp(rng)
    if act == "RELU_N1_TO_1":
        so, zo = float(10 ** rng.uniform(-2.5, -1.5)), int(rng.integers(-60, 61))
    z1, z2 = _zp(rng), _zp(rng)
    a = mb.input(f"a{tag}", shape, scale=s1, zero_point=z1)
    b = mb.input(f"b{tag}", shape, scale=s2, zero_point=z2)
    y = mb.tensor(f"y{tag}", shape, scale=so, zero_point=zo)
    mb.op(kind, [a, b], [y], ops.Elementwise(activation=act))
    mb.output(y)
    return [(shape, z1), (shape, z2)], None, f"{kind.lower()} {shape} {act} zp={z1},{z2}/{zo}"


DW_CHANNELS = (4, 8, 12, 16, 24, 32, 1, 3, 5, 6, 7, 9)  # the DSP depthwise takes multiples of 4


def random_model(rng, n_layers: int, kinds=("conv", "dw", "fc", "add"), hostile: float = 0.15,
                 channels=CHANNELS + (24, 32)):
    """A model of `n_layers` independent random layers: (model bytes, [(input shape, zp)], [description])."""
    mb = ModelBuilder()
    specs, descs = [], []
    for i in range(n_layers):
        kind = kinds[int(rng.integers(0, len(kinds)))]
        bad = rng.random() < hostile
        if kind in ("conv", "dw"):
            chans = channels if kind == "conv" else DW_CHANNELS
            shape, zp, d = add_conv_layer(mb, rng, str(i), kind == "dw", hostile=bad, channels=chans,
                                          force={"mult": 1} if (kind == "dw" and rng.random() < 0.7) else None)
            specs.append((shape, zp))
        elif kind == "fc":
            shape, zp, d = add_fc_layer(mb, rng, str(i), hostile=bad)
            specs.append((shape, zp))
        else:
            pairs, _, d = add_add_layer(mb, rng, str(i), "SUB" if rng.random() < 0.3 else "ADD")
            specs += pairs
        descs.append(d)
    return mb.build(), specs, descs


def sim_mismatches(model: bytes, inputs_list, build_dir, core: str = "cortex-m4", opt: str = "-O2",
                   flash_budget="default", prefer=None, share_all: bool = False, oracle_model: bytes = None):
    """Cross-compile `model` for `core`, run every input set in the simulator and in tflite-micro (on
    `oracle_model` when given: a twin tflite-micro can run, e.g. SVDFs with explicit zero biases).

    Returns (list of (input set, output index, first differing index), CompileResult)."""
    from specializer.bench import build_model_elf
    from specializer.oracle import run_tflm
    from specializer.targets.cortex_m.sim import Simulator

    res, elf = build_model_elf(model, core, build_dir, opt=opt, profile=False, flash_budget=flash_budget,
                               prefer=prefer, share_all=share_all)
    sim = Simulator(elf, core=core)
    bad = []
    for case, xs in enumerate(inputs_list):
        r = sim.run([np.ascontiguousarray(x).tobytes() for x in xs])
        ref = run_tflm(model if oracle_model is None else oracle_model, xs)
        for k, want in enumerate(ref):
            got = np.frombuffer(r.outputs[k], dtype=want.dtype).reshape(want.shape)
            if not np.array_equal(got, want):
                first = tuple(int(v) for v in np.argwhere(got != want)[0])
                bad.append((case, k, first))
    return bad, res


def lstm_gate_constants(mb: ModelBuilder, rng, tag: str, I: int, S: int, s_x: float, s_h: float, *,
                        per_channel=False, cifg=False, peephole=False, unit=64, gain=1.0, extreme=False,
                        bias_dtype="int32", bias_scale=1.0) -> list:
    """The 8 gate weights, 3 peephole weights and 4 biases of a random LSTM (None where absent), in TFLite's input
    order. Weight scales put the gate FC outputs around +-[0.1, 10] (`unit`: the activation scale's integer unit,
    `gain` on top); `extreme`: one gate in ten gets all-extreme weights; biases within +-2 (x `bias_scale`) gate
    pre-activation units at scale s_x * s_w."""
    ins: list = []
    s_gate = []
    for k in range(8):
        depth = I if k < 4 else S
        s_in = s_x if k < 4 else s_h
        target = 10 ** rng.uniform(-1, 1)
        s_w = float(target * gain / (s_in * unit * np.sqrt(depth)))
        w = rng.integers(-127, 128, size=(S, depth)).astype(np.int8)
        if extreme and rng.random() < 0.1:
            w[:] = int(rng.choice([-127, 127]))
        s_gate.append(s_w)
        if per_channel and k == 0:
            ins.append(mb.const(f"{tag}_w{k}", w, scale=np.full(S, s_w, np.float32), axis=0))
        elif cifg and k in (0, 4):
            ins.append(None)
        else:
            ins.append(mb.const(f"{tag}_w{k}", w, scale=s_w))
    for k in range(3):  # peephole
        ins.append(mb.const(f"{tag}_p{k}", rng.integers(-100, 100, size=S).astype(np.int16), scale=0.01)
                   if peephole else None)
    for k in range(4):
        s_b = s_x * s_gate[k]
        b = np.round(rng.uniform(-2, 2, size=S) * bias_scale / s_b)
        if bias_dtype == "int32":
            b = b.clip(-2**31, 2**31 - 1)
        ins.append(mb.const(f"{tag}_b{k}", b.astype(bias_dtype), scale=s_b))
    return ins


def add_lstm(mb: ModelBuilder, rng, *, n_cell=None, n_input=None, steps=None, batches=None, time_major=None,
             intermediates=None, cell_pow=None, peephole=False, per_channel=False, cifg=False, tag="l"):
    """Add one random LSTM (its own input and output) to `mb`; returns the input index."""
    S = n_cell or int(rng.integers(1, 25))
    I = n_input or int(rng.integers(1, 33))
    T = steps or int(rng.integers(1, 31))
    B = batches or int(rng.integers(1, 3))
    tm = bool(rng.random() < 0.5) if time_major is None else time_major
    s_x = float(10 ** rng.uniform(-3, -0.5))
    zp_x = _zp(rng)
    s_h = float(10 ** rng.uniform(-3, -1))
    zp_h = _zp(rng)
    s_c = 2.0 ** (cell_pow if cell_pow is not None else -int(rng.integers(8, 16)))
    shape = (T, B, I) if tm else (B, T, I)
    x = mb.input(f"{tag}_x", shape, "int8", s_x, zp_x)
    ins = [x] + lstm_gate_constants(mb, rng, tag, I, S, s_x, s_h, per_channel=per_channel, cifg=cifg,
                                    peephole=peephole)
    ins += [None, None]  # projection
    h = mb.tensor(f"{tag}_h", (B, S), "int8", s_h, zp_h, variable=True)
    c = mb.tensor(f"{tag}_c", (B, S), "int16", s_c, 0, variable=True)
    ins += [h, c, None, None, None, None]
    y = mb.tensor(f"{tag}_y", (shape[0], shape[1], S), "int8", s_h, zp_h)
    inter = []
    if intermediates if intermediates is not None else rng.random() < 0.5:
        inter = [mb.tensor(f"{tag}_i{k}", (0,), "float32") for k in range(4)]
        inter.append(mb.tensor(f"{tag}_eh", (0,), "int8", s_h, zp_h))
    clip = float(rng.choice([0.0, 0.5, 3.0, 10.0])) if rng.random() < 0.6 else 0.0
    attrs = ops.UnidirectionalSequenceLSTM(activation="TANH", cell_clip=clip, time_major=tm)
    mb.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], attrs, intermediates=inter)
    mb.output(y)
    return x


def lstm_inputs(mb: ModelBuilder, rng, n_full=1, n_narrow=1):
    """Full-range then narrow-range (around the zero point) int8 inputs for every input of `mb`."""
    sets = []
    for k in range(n_full + n_narrow):
        xs = []
        for tid in mb.inputs:
            t = mb.tensors[tid]
            if k < n_full:
                xs.append(rng.integers(-128, 128, size=t.shape).astype(np.int8))
            else:
                zp = t.zero_point[0]
                lo, hi = max(-128, zp - 20), min(127, zp + 20)
                xs.append(rng.integers(lo, hi + 1, size=t.shape).astype(np.int8))
        sets.append(xs)
    return sets


def add_pool_layer(mb: ModelBuilder, rng, tag: str) -> tuple:
    """One random AVERAGE/MAX_POOL_2D: filters 1..4, strides 1..3, SAME/VALID, channels not a multiple of 4 too."""
    for _ in range(100):
        fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        padding = str(rng.choice(["SAME", "VALID"]))
        ih, iw = int(rng.integers(fh, 14)), int(rng.integers(fw, 14))
        oh, ow = ops.conv_output_size(ih, fh, sh, 1, padding), ops.conv_output_size(iw, fw, sw, 1, padding)
        # TFLM rejects windows entirely in the padding (SAME with stride > filter can make them)
        def pad(o_, s_, f_, n_):
            return max((o_ - 1) * s_ + f_ - n_, 0) // 2 if padding == "SAME" else 0

        ok = all(min(o * s - pad(oh_, s, f, n) + f, n) > max(o * s - pad(oh_, s, f, n), 0)
                 for oh_, s, f, n in ((oh, sh, fh, ih), (ow, sw, fw, iw)) for o in range(oh_))
        if ok:
            break
    c = int(rng.choice([1, 3, 4, 8, 13]))
    kind = "AVERAGE_POOL_2D" if rng.random() < 0.5 else "MAX_POOL_2D"
    s, zp = float(10 ** rng.uniform(-3, 0)), _zp(rng)
    x = mb.input(f"x{tag}", (1, ih, iw, c), scale=s, zero_point=zp)
    y = mb.tensor(f"y{tag}", (1, oh, ow, c), scale=s, zero_point=zp)
    mb.op(kind, [x], [y], ops.Pool2D(padding=padding, stride_h=sh, stride_w=sw, filter_h=fh, filter_w=fw))
    mb.output(y)
    return (1, ih, iw, c), zp, f"{kind} {ih}x{iw}x{c} f={fh}x{fw} s={sh},{sw} {padding}"


def rows_depthwise_model(rng, tag: str, n: int, max_w: int = 14):
    """A model of `n` independent depthwise layers (multiplier 1, channels a multiple of 4) of any kernel (1-5),
    stride (1-2), dilation and padding, widths below `max_w`, ~15% with hostile quantization: what the rows and
    planar depthwise take. Returns (model bytes, input specs)."""
    from specializer.tflite_writer import ModelBuilder

    mb = ModelBuilder()
    specs = []
    for k in range(n):
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        dh, dw = (1, 1) if rng.random() < 0.7 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = "SAME" if rng.random() < 0.6 else "VALID"
        geom = (int(rng.integers(kh * dh, 14)), int(rng.integers(kw * dw, max_w)), kh, kw, sh, sw, dh, dw, pad)
        shape, zp, _ = add_conv_layer(mb, rng, f"{tag}_{k}", True, force={"geom": geom, "mult": 1},
                                      channels=(4, 8, 12, 16), hostile=rng.random() < 0.15)
        specs.append((shape, zp))
    return mb.build(), specs


def chunked_depthwise_model(rng, tag: str, n: int, r: int = 8):
    """A model of `n` independent depthwise layers the chunked planar variant takes with chunks of `r` rows
    (stride 1, SAME, no dilation, kernels 1-5 either way, heights 2-4 chunks, widths 1-20), ~15% with hostile
    quantization. Returns (model bytes, input specs)."""
    from specializer.tflite_writer import ModelBuilder

    mb = ModelBuilder()
    specs = []
    for k in range(n):
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        ih = r * int(rng.integers(2, 5))
        geom = (ih, int(rng.integers(1, 21)), kh, kw, 1, 1, 1, 1, "SAME")
        shape, zp, _ = add_conv_layer(mb, rng, f"{tag}_{k}", True, force={"geom": geom, "mult": 1},
                                      channels=(4, 8, 12), hostile=rng.random() < 0.15)
        specs.append((shape, zp))
    return mb.build(), specs


def _band_producer(mb: ModelBuilder, rng, tag: str, pk: str = None) -> tuple:
    """The P layer of a band (passes/fuse_bands) on its own input: a 1x1 CONV_2D (channels x1..x6), a KxK
    CONV_2D (any stride, SAME/VALID) or a DEPTHWISE_CONV_2D. Returns (x, m, input hwc, input zp, output hwc,
    output scale, output zp, description)."""
    pk = pk or str(rng.choice(["pw", "conv", "dw"]))
    ih, iw = (int(v) for v in rng.integers(3, 15, size=2))
    cin = int(rng.choice((1, 2, 3, 4, 5, 8)))
    in_s, in_zp = float(10 ** rng.uniform(-2, -1)), _zp(rng)
    act1 = str(rng.choice(ACTS))
    m_s, m_zp = output_quant(rng, act1)
    x = mb.input(f"x{tag}", (1, ih, iw, cin), scale=in_s, zero_point=in_zp)
    if pk == "pw":
        kh1 = kw1 = s1 = 1
        pad1 = "VALID"
        cm = cin * int(rng.integers(1, 7))
    else:
        kh1, kw1 = (int(v) for v in rng.integers(1, 5, size=2))
        s1 = int(rng.integers(1, 3))
        pad1 = str(rng.choice(["SAME", "VALID"])) if min(ih, iw) >= max(kh1, kw1) else "SAME"
        cm = cin * int(rng.integers(1, 4)) if pk == "dw" else int(rng.choice((2, 4, 6, 8, 16)))
    mh, mw = ops.conv_output_size(ih, kh1, s1, 1, pad1), ops.conv_output_size(iw, kw1, s1, 1, pad1)
    depth1 = cin * kh1 * kw1 if pk != "dw" else kh1 * kw1
    w1s = _weight_scales(rng, cm, rng.random() < 0.7)
    wshape1 = (1, kh1, kw1, cm) if pk == "dw" else (cm, kh1, kw1, cin)
    w1 = mb.const(f"w1{tag}", rng.integers(-127, 128, wshape1).astype(np.int8), scale=w1s, axis=3 if pk == "dw" else 0)
    acc1 = 74.0 * 73.0 * np.sqrt(depth1)
    m_s = float(float(np.median(w1s)) * in_s * acc1 / 40.0 * 10 ** rng.uniform(-0.3, 0.3))
    b1 = mb.const(f"b1{tag}", (rng.uniform(-2, 2, cm) * acc1).astype(np.int32),
                  scale=np.broadcast_to((in_s * w1s.astype(np.float64)).astype(np.float32), (cm,)), axis=0)
    m = mb.tensor(f"m{tag}", (1, mh, mw, cm), scale=m_s, zero_point=m_zp)
    if pk == "dw":
        mb.op("DEPTHWISE_CONV_2D", [x, w1, b1], [m], ops.DepthwiseConv2D(
            padding=pad1, stride_h=s1, stride_w=s1, depth_multiplier=cm // cin, activation=act1))
    else:
        mb.op("CONV_2D", [x, w1, b1], [m], ops.Conv2D(padding=pad1, stride_h=s1, stride_w=s1, activation=act1))
    desc = f"1x{ih}x{iw}x{cin} -{pk} {kh1}x{kw1} s{s1} {pad1}-> {mh}x{mw}x{cm}"
    return x, m, (ih, iw, cin), in_zp, (mh, mw, cm), m_s, m_zp, desc


def add_band_pair(mb: ModelBuilder, rng, tag: str) -> tuple:
    """x -> P -> C -> y, its own input and output, batch 1: what passes/fuse_bands runs row band by row band.
    P: a 1x1 CONV_2D (channels x1..x6), a KxK CONV_2D (any stride, SAME/VALID) or a DEPTHWISE_CONV_2D; C: a
    DEPTHWISE_CONV_2D or CONV_2D (any kernel, stride, SAME/VALID, dilation along W), a MAX_POOL_2D or an
    AVERAGE_POOL_2D."""
    pk = str(rng.choice(["pw", "conv", "dw"]))
    ck = str(rng.choice(["dw", "conv", "max", "avg"]))
    x, m, (ih, iw, cin), in_zp, (mh, mw, cm), m_s, m_zp, pdesc = _band_producer(mb, rng, tag, pk)
    if ck in ("max", "avg"):
        fh, fw = (int(v) for v in rng.integers(1, 4, size=2))
        sh = int(rng.integers(1, min(fh, fw) + 1))
        sw = sh
        padding = "VALID" if (mh >= fh and mw >= fw and rng.random() < 0.5) else "SAME"
        oh = ops.conv_output_size(mh, fh, sh, 1, padding)
        ow = ops.conv_output_size(mw, fw, sw, 1, padding)
        cout = cm
        y = mb.tensor(f"y{tag}", (1, oh, ow, cout), scale=m_s, zero_point=m_zp)
        mb.op("MAX_POOL_2D" if ck == "max" else "AVERAGE_POOL_2D", [m], [y],
              ops.Pool2D(padding=padding, stride_h=sh, stride_w=sw, filter_h=fh, filter_w=fw))
        kh, kw, dw = fh, fw, 1
    else:
        kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        dw = int(rng.integers(1, 3)) if (kw > 1 and rng.random() < 0.3) else 1
        padding = "VALID" if (mh >= kh and mw >= (kw - 1) * dw + 1 and rng.random() < 0.5) else "SAME"
        depthwise = ck == "dw"
        mult = int(rng.integers(1, 3)) if depthwise else 1
        cout = cm * mult if depthwise else int(rng.choice((2, 3, 4, 8, 12)))
        act2 = str(rng.choice(ACTS))
        y_s, y_zp = output_quant(rng, act2)
        taps = kh * kw * (1 if depthwise else cm)
        w2s = _weight_scales(rng, cout, rng.random() < 0.7)
        wshape = (1, kh, kw, cout) if depthwise else (cout, kh, kw, cm)
        w2 = mb.const(f"w2{tag}", rng.integers(-127, 128, wshape).astype(np.int8), scale=w2s,
                      axis=3 if depthwise else 0)
        acc2 = 74.0 * 73.0 * np.sqrt(taps)
        y_s = float(float(np.median(w2s)) * m_s * acc2 / 40.0 * 10 ** rng.uniform(-0.3, 0.3))
        b2 = mb.const(f"b2{tag}", (rng.uniform(-2, 2, cout) * acc2).astype(np.int32),
                      scale=np.broadcast_to((m_s * w2s.astype(np.float64)).astype(np.float32), (cout,)), axis=0)
        oh = ops.conv_output_size(mh, kh, sh, 1, padding)
        ow = ops.conv_output_size(mw, kw, sw, dw, padding)
        y = mb.tensor(f"y{tag}", (1, oh, ow, cout), scale=y_s, zero_point=y_zp)
        if depthwise:
            mb.op("DEPTHWISE_CONV_2D", [m, w2, b2], [y], ops.DepthwiseConv2D(
                padding=padding, stride_h=sh, stride_w=sw, dilation_h=1, dilation_w=dw, depth_multiplier=mult,
                activation=act2))
        else:
            mb.op("CONV_2D", [m, w2, b2], [y], ops.Conv2D(padding=padding, stride_h=sh, stride_w=sw, dilation_h=1,
                                                         dilation_w=dw, activation=act2))
    mb.output(y)
    desc = f"band {pdesc} -{ck} {kh}x{kw} s={sh},{sw} d=1,{dw} {padding}-> {oh}x{ow}x{cout}"
    return (1, ih, iw, cin), in_zp, desc


def _conv_on(mb: ModelBuilder, rng, name: str, x, xshape, xs: float, cout: int, k: tuple, s: int, padding: str):
    """A CONV_2D reading x (shape xshape, scale xs) with random weights, bias, activation and an output scale that
    spreads its accumulators over ~40 steps; returns (tensor, shape, scale, zero point)."""
    _, h, w, cin = xshape
    act = str(rng.choice(ACTS))
    _, y_zp = output_quant(rng, act)
    ws = _weight_scales(rng, cout, rng.random() < 0.7)
    wt = mb.const(f"w{name}", rng.integers(-127, 128, (cout, k[0], k[1], cin)).astype(np.int8), scale=ws, axis=0)
    acc = 74.0 * 73.0 * np.sqrt(k[0] * k[1] * cin)
    y_s = float(float(np.median(ws)) * xs * acc / 40.0 * 10 ** rng.uniform(-0.3, 0.3))
    b = mb.const(f"b{name}", (rng.uniform(-2, 2, cout) * acc).astype(np.int32),
                 scale=np.broadcast_to((xs * ws.astype(np.float64)).astype(np.float32), (cout,)), axis=0)
    shape = (1, ops.conv_output_size(h, k[0], s, 1, padding), ops.conv_output_size(w, k[1], s, 1, padding), cout)
    y = mb.tensor(f"y{name}", shape, scale=y_s, zero_point=y_zp)
    mb.op("CONV_2D", [x, wt, b], [y], ops.Conv2D(padding=padding, stride_h=s, stride_w=s, activation=act))
    return y, shape, y_s, y_zp


def add_residual_block(mb: ModelBuilder, rng, tag: str) -> tuple:
    """x -> P -> C -> ADD(C's output, x or S(x)) -> y: a residual block as passes/fuse_bands runs it. P: KxK
    (1..3 each way) stride 1 (identity) or 1..2 (shortcut), SAME; C: KxK stride 1 SAME; S: 1x1 or 3x3 with P's
    stride, SAME; the ADD's operand order, scales and activation at random."""
    ih, iw = (int(v) for v in rng.integers(2, 13, size=2))
    cin = int(rng.choice((2, 3, 4, 8, 16)))
    xs, xzp = float(10 ** rng.uniform(-2, -1)), _zp(rng)
    x = mb.input(f"x{tag}", (1, ih, iw, cin), scale=xs, zero_point=xzp)
    identity = rng.random() < 0.5
    s = 1 if identity else int(rng.integers(1, 3))
    k1 = tuple(int(v) for v in rng.integers(1, 4, size=2))
    k2 = tuple(int(v) for v in rng.integers(1, 4, size=2))
    cm = int(rng.choice((4, 8, 16)))
    cout = cin if identity else int(rng.choice((4, 8, 12)))
    m, mshape, ms, _ = _conv_on(mb, rng, f"p{tag}", x, (1, ih, iw, cin), xs, cm, k1, s, "SAME")
    c, cshape, cs, czp = _conv_on(mb, rng, f"c{tag}", m, mshape, ms, cout, k2, 1, "SAME")
    if identity:
        res, rs, rzp, ks = x, xs, xzp, None
    else:
        ks = (1, 1) if rng.random() < 0.6 else (3, 3)
        res, _, rs, rzp = _conv_on(mb, rng, f"s{tag}", x, (1, ih, iw, cin), xs, cout, ks, s, "SAME")
    act = str(rng.choice(ACTS))
    so, zo = max(cs, rs) * float(10 ** rng.uniform(-0.3, 0.7)), _zp(rng)
    if act == "RELU_N1_TO_1":
        so, zo = float(10 ** rng.uniform(-2.5, -1.5)), int(rng.integers(-60, 61))
    y = mb.tensor(f"y{tag}", cshape, scale=so, zero_point=zo)
    first = rng.random() < 0.5
    mb.op("ADD", [c, res] if first else [res, c], [y], ops.Elementwise(activation=act))
    mb.output(y)
    desc = (f"block 1x{ih}x{iw}x{cin} P {k1} s{s} -> {mshape} C {k2} -> {cshape} + "
            f"{'x' if identity else f'S {ks} s{s}'} ({'c, res' if first else 'res, c'}) {act}")
    return (1, ih, iw, cin), xzp, desc


def residual_block_model(rng, n: int):
    def add(mb, r, i):
        shape, zp, d = add_residual_block(mb, r, str(i))
        return [(shape, zp)], d

    return layers_model(rng, n, add)


def layers_model(rng, n: int, add_layer):
    """A model of n independent random layers: `add_layer(mb, rng, i) -> ([(input shape, zp)], description)`;
    returns (model bytes, [(input shape, zp)], [description])."""
    mb = ModelBuilder()
    specs, descs = [], []
    for i in range(n):
        sp, d = add_layer(mb, rng, i)
        specs += sp
        descs.append(d)
    return mb.build(), specs, descs


def band_pair_model(rng, n: int):
    def add(mb, r, i):
        shape, zp, d = add_band_pair(mb, r, str(i))
        return [(shape, zp)], d

    return layers_model(rng, n, add)


def add_band_fc(mb: ModelBuilder, rng, tag: str) -> tuple:
    """x -> P -> FULLY_CONNECTED -> y (P as `_band_producer` draws it; 1..13 output rows, any activation, per-tensor
    weights as TFLite's FC has): what passes/fuse_bands runs as a BANDED_FC."""
    x, m, (ih, iw, cin), in_zp, (mh, mw, cm), m_s, m_zp, pdesc = _band_producer(mb, rng, tag)
    k = mh * mw * cm
    r = int(rng.choice((1, 2, 3, 4, 5, 8, 13)))
    act = str(rng.choice(ACTS))
    y_s, y_zp = output_quant(rng, act)
    ws = _weight_scales(rng, r, False)
    wq = rng.integers(-127, 128, size=(r, k)).astype(np.int8)
    acc = 74.0 * 73.0 * np.sqrt(k)
    y_s = float(float(np.median(ws)) * m_s * acc / 40.0 * 10 ** rng.uniform(-0.3, 0.3))
    w = mb.const(f"wf{tag}", wq, scale=ws, axis=0)
    b = None
    if rng.random() < 0.8:
        b = mb.const(f"bf{tag}", (rng.uniform(-2, 2, r) * acc).astype(np.int32),
                     scale=np.broadcast_to((m_s * ws.astype(np.float64)).astype(np.float32), (r,)), axis=0)
    y = mb.tensor(f"y{tag}", (1, r), scale=y_s, zero_point=y_zp)
    mb.op("FULLY_CONNECTED", [m, w, b], [y], ops.FullyConnected(activation=act))
    mb.output(y)
    return (1, ih, iw, cin), in_zp, f"band {pdesc} -fc-> {r} {act}"


def band_fc_model(rng, n: int):
    def add(mb, r, i):
        shape, zp, d = add_band_fc(mb, r, str(i))
        return [(shape, zp)], d

    return layers_model(rng, n, add)


def compare_in_batches(tmp_path, rng, n: int, per: int, make, target=None, prefer=None) -> None:
    """n random layers, `per` to a model: `make(rng, k) -> (model, [(input shape, zp)], [description])`, each
    model compared with tflite-micro on the host (ASan) for two input sets; fails naming the layers that differ."""
    from specializer.oracle import compare

    for m in range(0, n, per):
        model, specs, descs = make(rng, min(per, n - m))
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{m}", target=target, prefer=prefer)
        assert not bad, "not bit-exact: " + "; ".join(
            f"{b} [{descs[b.output] if b.output < len(descs) else '?'}]" for b in bad[:5])


def add_svdf(mb: ModelBuilder, rng, *, batches=None, units=None, rank=None, memory=None, n_input=None, bias=None,
             act=None, state="int16", state_zp=None, wild=None, zero_bias=False, tag="s") -> str:
    """Add one random integer SVDF (its own input, variable state and output) to `mb`; returns a description.

    Batches 1..3, units 1..16, rank 1..3, memory 1..10, inputs 1..40, NONE/RELU (TFLM ignores it), scales over
    orders of magnitude, input zero points at the extremes, state zero points mostly 0 (the converter's) and
    sometimes not. `wild` layers saturate the state, take feature multipliers > 1, full-range time weights and
    huge biases, so that TFLM's int32 time accumulator wraps around. `zero_bias`: a layer drawn without bias
    gets an explicit all-zero bias instead (the oracle's twin: TFLM crashes on an SVDF without bias)."""
    B = batches or int(rng.integers(1, 4))
    U = units or int(rng.integers(1, 17))
    R = rank or int(rng.integers(1, 4))
    M = memory or int(rng.integers(1, 11))
    I = n_input or int(rng.integers(1, 41))
    F = U * R
    has_bias = bool(rng.random() < 0.7) if bias is None else bias
    act = act or str(rng.choice(["NONE", "RELU"]))
    wild = bool(rng.random() < 0.15) if wild is None else wild
    tmax = 32767 if state == "int16" else 127
    s_x = float(10 ** rng.uniform(-3, 0))
    zp_x = _zp(rng)
    s_wf = float(10 ** rng.uniform(-4, -1))
    if state_zp is None:
        if state == "int8":
            state_zp = _zp(rng)
        else:
            r = rng.random()
            state_zp = (0 if r < 0.8 else int(rng.integers(-3000, 3001)) if r < 0.93
                        else int(rng.choice([-32768, 32767])))
    feat = 5425.0 * np.sqrt(I)  # typical |sum wf * (x - zp_x)| of random data
    t1 = 10 ** (rng.uniform(5, 7) if wild else rng.uniform(0.5, np.log10(tmax) + 0.3))  # state value, int units
    s_st = float(s_x * s_wf * feat / t1)
    amp = tmax if wild else int(min(tmax, 10 ** rng.uniform(0.5, np.log10(tmax))))
    s_wt = float(10 ** rng.uniform(-5, -2))
    t_sum = amp / np.sqrt(3) * min(t1, tmax) / 2 * np.sqrt(M * R)  # typical |bias-free time sum|
    s_y = float(s_st * s_wt * t_sum / 10 ** rng.uniform(0.3, 2.5))
    x = mb.input(f"{tag}_x", (B, I), "int8", s_x, zp_x)
    wf = mb.const(f"{tag}_wf", rng.integers(-127, 128, size=(F, I)).astype(np.int8), scale=s_wf)
    wt_dt = np.int16 if state == "int16" else np.int8
    wt = mb.const(f"{tag}_wt", rng.integers(-amp, amp + 1, size=(F, M)).astype(wt_dt), scale=s_wt)
    s_b = float(np.float32(s_st) * np.float32(s_wt))
    if has_bias:
        lim = 2**31 - 1 if wild else min(2**31 - 1, int(1.5 * t_sum) + 1)
        b = mb.const(f"{tag}_b", rng.integers(-lim, lim, size=U, endpoint=True).astype(np.int32), scale=s_b)
    elif zero_bias:
        b = mb.const(f"{tag}_b", np.zeros(U, np.int32), scale=s_b)
    else:
        b = None
    st = mb.tensor(f"{tag}_state", (B, M * F), state, s_st, state_zp, variable=True)
    y = mb.tensor(f"{tag}_y", (B, U), "int8", s_y, _zp(rng))
    mb.op("SVDF", [x, wf, wt, b, st], [y], ops.SVDF(rank=R, activation=act))
    mb.output(y)
    return (f"{tag}: SVDF batches {B} inputs {I} units {U} rank {R} memory {M} {state} state zp {state_zp} "
            f"bias {'yes' if has_bias else 'no'} {act}{' wild' if wild else ''}")


def svdf_model_pair(seed: int, layers, **kw) -> tuple:
    """(model, oracle twin, descriptions, builder) with random SVDFs: `layers` is their number, or one dict of
    add_svdf arguments per layer (`kw` go to every layer). The twin is the same model with an explicit zero bias
    wherever the model has none (TFLM's Eval reads a missing bias as zeros, but its Prepare crashes on it), built
    from the same random draws."""
    per_layer = [{}] * layers if isinstance(layers, int) else list(layers)
    out = []
    for zero_bias in (False, True):
        rng = np.random.default_rng(seed)
        mb = ModelBuilder()
        desc = [add_svdf(mb, rng, zero_bias=zero_bias, tag=f"s{k}", **{**kw, **lk}) for k, lk in enumerate(per_layer)]
        out.append((mb, desc))
    (mb, desc), (twin, _) = out
    return mb.build(), twin.build(), desc, mb


def svdf_frames(mb: ModelBuilder, rng, n_frames: int) -> list:
    """Frames for every input of `mb`: full range, then alternately narrow (around the zero point) and full."""
    frames = []
    for k in range(n_frames):
        xs = []
        for tid in mb.inputs:
            t = mb.tensors[tid]
            zp = t.zero_point[0]
            lo, hi = (-128, 127) if k % 2 == 0 else (max(-128, zp - 20), min(127, zp + 20))
            xs.append(rng.integers(lo, hi + 1, size=t.shape).astype(np.int8))
        frames.append(xs)
    return frames
