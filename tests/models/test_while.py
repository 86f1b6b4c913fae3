"""Recurrent models converted with a WHILE loop (issue #9): the importer unrolls a WHILE whose trip count is a
compile-time constant (an int32 counter `i < N`, `i = i + 1`) into straight-line ops, and the compiled library is
bit-exact with tflite-micro running the WHILE itself (host generic and Cortex-M4 builds, ASan/UBSan). Control flow
it cannot unroll (a data-dependent trip count, IF, CALL_ONCE) is a one-line error, exit status 2, nothing written."""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.cli import main
from specializer.errors import ControlFlowError, UnsupportedOpError
from specializer.frontend import load_model
from specializer.oracle import compare, run_tflm
from specializer.tflite_writer import ModelBuilder

H_Q = (1 / 128, 0)


def _loop(mb: ModelBuilder, carried: list, n_iter, body_fn, n_from_input: bool = False, host=None):
    """WHILE over `carried` = [(name, shape, dtype, scale, zp, main tensor id)], preceded by an int32 counter from
    0 (a main-graph constant) and the trip count (a constant, or a model input when `n_from_input`).
    `body_fn(body, i, tensors)` builds the body's ops and returns the new carried tensors (without the counter).
    The WHILE goes into `host` (default: the main graph; another loop's body for nested loops).
    Returns the WHILE's output tensor ids (counter, limit, carried...)."""
    host = host or mb
    i0 = host.const("i0", np.array(0, np.int32))
    lim = host.input("n", (), "int32") if n_from_input else host.const("n", np.array(n_iter, np.int32))
    sigs = [("i", (), "int32", None, None), ("n", (), "int32", None, None)] + [c[:5] for c in carried]

    def params(sub):
        return [sub.tensor(nm, shp, dt, sc, zp) for nm, shp, dt, sc, zp in sigs]

    cond = mb.subgraph("while_cond")
    ci = params(cond)
    flag = cond.tensor("flag", (), "bool")
    cond.raw_op("LESS", [ci[0], ci[1]], [flag])
    cond.inputs, cond.outputs = ci, [flag]

    body = mb.subgraph("while_body")
    bi = params(body)
    one = body.const("one", np.array(1, np.int32))
    inext = body.tensor("i_next", (), "int32")
    body.op("ADD", [bi[0], one], [inext], ops.Elementwise())
    new = body_fn(body, bi[0], bi[2:])
    body.inputs, body.outputs = bi, [inext, bi[1]] + list(new)

    outs = [host.tensor(f"{nm}_out", shp, dt, sc, zp) for nm, shp, dt, sc, zp in sigs]
    host.control_op("WHILE", [i0, lim] + [c[5] for c in carried], outs, cond=cond, body=body)
    return outs


def cell_model(n_iter: int, seed: int = 0, feat: int = 12, hidden: int = 16, seq=False) -> bytes:
    """h = tanh(FC(x_t) + FC(h)) iterated n_iter times; x_t is the model input (seq=False) or, as the converter
    writes a recurrent layer over a sequence, GATHER(x, i) of a (1, n_iter, feat) input at the loop counter
    (seq=True) or STRIDED_SLICE(x, begin=PACK(0, i, 0), end=begin + (1, 1, feat)) (seq="slice")."""
    rng = np.random.default_rng(seed)
    x_q = (0.05, int(rng.integers(-10, 10)))
    mb = ModelBuilder(description="test_while cell")
    x = mb.input("x", (1, n_iter, feat) if seq else (1, feat), "int8", *x_q)
    h0 = mb.const("h0", rng.integers(-40, 40, (1, hidden)).astype(np.int8), scale=H_Q[0], zero_point=H_Q[1])
    xshape = (1, n_iter, feat) if seq else (1, feat)

    def body_fn(b, i, carried):
        bx, bh = carried
        xt = bx
        if seq == "slice":
            xt = b.tensor("x_t", (1, feat), "int8", *x_q)
            zero = b.const("zero", np.array(0, np.int32))
            begin, end = b.tensor("begin", (3,), "int32"), b.tensor("end", (3,), "int32")
            b.op("PACK", [zero, i, zero], [begin], ops.Pack(values_count=3, axis=0))
            b.op("ADD", [begin, b.const("size", np.array([1, 1, feat], np.int32))], [end], ops.Elementwise())
            b.op("STRIDED_SLICE", [bx, begin, end, b.const("strides", np.array([1, 1, 1], np.int32))], [xt],
                 ops.StridedSlice(shrink_axis_mask=2))
        elif seq:
            xt = b.tensor("x_t", (1, feat), "int8", *x_q)
            b.op("GATHER", [bx, i], [xt], ops.Gather(axis=1))
        wx = b.const("wx", rng.integers(-127, 128, (hidden, feat)).astype(np.int8), scale=0.002)
        wh = b.const("wh", rng.integers(-127, 128, (hidden, hidden)).astype(np.int8), scale=0.0025)
        bias = b.const("bias", rng.integers(-800, 800, hidden).astype(np.int32), scale=x_q[0] * 0.002)
        a = b.tensor("xa", (1, hidden), "int8", 0.02, int(rng.integers(-5, 5)))
        c = b.tensor("ha", (1, hidden), "int8", 0.01, int(rng.integers(-5, 5)))
        s = b.tensor("pre", (1, hidden), "int8", 0.025, 0)
        hn = b.tensor("h_next", (1, hidden), "int8", *H_Q)
        b.op("FULLY_CONNECTED", [xt, wx, bias], [a], ops.FullyConnected())
        b.op("FULLY_CONNECTED", [bh, wh, None], [c], ops.FullyConnected())
        b.op("ADD", [a, c], [s], ops.Elementwise())
        b.op("TANH", [s], [hn])
        return [bx, hn]

    outs = _loop(mb, [("x", xshape, "int8", *x_q, x), ("h", (1, hidden), "int8", *H_Q, h0)], n_iter, body_fn)
    mb.output(outs[3])
    return mb.build()


def accumulate_model(n_iter: int, seed: int = 0, n: int = 24) -> bytes:
    """acc = acc + x (int8 ADD with rescaling), then acc = acc * g (MUL by a constant): a loop with no weights."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder(description="test_while accumulate")
    x = mb.input("x", (1, n), "int8", 0.02, 0)
    acc_q = (0.1, int(rng.integers(-20, 20)))
    acc0 = mb.const("acc0", np.zeros((1, n), np.int8) + acc_q[1], scale=acc_q[0], zero_point=acc_q[1])

    def body_fn(b, i, carried):
        bx, bacc = carried
        s = b.tensor("sum", (1, n), "int8", 0.12, 0)
        b.op("ADD", [bacc, bx], [s], ops.Elementwise())
        g = b.const("gain", rng.integers(60, 127, (1, n)).astype(np.int8), scale=0.01, zero_point=0)
        out = b.tensor("acc_next", (1, n), "int8", *acc_q)
        b.op("MUL", [s, g], [out], ops.Elementwise())
        return [bx, out]

    outs = _loop(mb, [("x", (1, n), "int8", 0.02, 0, x), ("acc", (1, n), "int8", *acc_q, acc0)], n_iter, body_fn)
    mb.output(outs[3])
    return mb.build()



def gru_while_model(steps: int = 6, seed: int = 7, feat: int = 10, hidden: int = 16, classes: int = 6) -> bytes:
    """The GRU of `specializer.zoo.gru_kws` written as a WHILE over time steps instead of unrolled: the body
    GATHERs x[:, i, :], two FULLY_CONNECTED (3 x hidden), SPLITs into z / r / n, ADD + LOGISTIC, MUL + ADD + TANH,
    h = z * h + (1 - z) * n; one quantization per tensor for every step (calibrated in float over all steps, the
    state fixed at 1/128); after the loop a FULLY_CONNECTED classifier and SOFTMAX."""
    from specializer.zoo import _range_quant, _sigmoid

    rng = np.random.default_rng(seed)
    H = hidden
    wx = rng.normal(0, 1 / np.sqrt(feat), (3 * H, feat))
    wh = rng.normal(0, 1 / np.sqrt(H), (3 * H, H))
    bx, bh = rng.normal(0, 0.1, 3 * H), rng.normal(0, 0.1, 3 * H)
    wo, bo = rng.normal(0, 1 / np.sqrt(H), (classes, H)), rng.normal(0, 0.1, classes)
    in_q = (1 / 32, 0)
    ranges: dict = {}

    def seen(name, v):
        lo, hi = ranges.get(name, (np.inf, -np.inf))
        ranges[name] = (min(lo, float(v.min())), max(hi, float(v.max())))

    for x in rng.integers(-128, 128, size=(12, steps, feat)) * in_q[0]:
        h = np.zeros(H)
        for t in range(steps):
            xp, hp = wx @ x[t] + bx, wh @ h + bh
            seen("xp", xp), seen("hp", hp)
            zpre, rpre = xp[:H] + hp[:H], xp[H:2 * H] + hp[H:2 * H]
            seen("zpre", zpre), seen("rpre", rpre)
            z, r = _sigmoid(zpre), _sigmoid(rpre)
            rh = r * hp[2 * H:]
            seen("rh", rh)
            npre = xp[2 * H:] + rh
            seen("npre", npre)
            n = np.tanh(npre)
            seen("zh", z * h), seen("omz", 1 - z), seen("omzn", (1 - z) * n)
            h = np.clip(z * h + (1 - z) * n, -1, 127 / 128)
        seen("logits", wo @ h + bo)

    def q(name):
        return _range_quant(*ranges[name], False)

    def qw(w):
        ws = float(np.abs(w).max()) / 127
        return np.clip(np.round(w / ws), -127, 127).astype(np.int8), ws

    mb = ModelBuilder(description="test_while gru")
    x = mb.input("x", (1, steps, feat), "int8", *in_q)
    h0 = mb.const("h0", np.zeros((1, H), np.int8), scale=H_Q[0], zero_point=H_Q[1])
    sig_q, tanh_q = (1 / 256, -128), (1 / 128, 0)

    def body_fn(b, i, carried):
        bx_, bh_ = carried

        def t(name, shape, qq):
            return b.tensor(name, shape, "int8", *qq)

        xt = t("x_t", (1, feat), in_q)
        b.op("GATHER", [bx_, i], [xt], ops.Gather(axis=1))
        wxq, wxs = qw(wx)
        whq, whs = qw(wh)
        xp, hp = t("xp", (1, 3 * H), q("xp")), t("hp", (1, 3 * H), q("hp"))
        b.op("FULLY_CONNECTED", [xt, b.const("wx", wxq, scale=wxs),
                                 b.const("bx", np.round(bx / (in_q[0] * wxs)).astype(np.int32),
                                         scale=in_q[0] * wxs)], [xp], ops.FullyConnected())
        b.op("FULLY_CONNECTED", [bh_, b.const("wh", whq, scale=whs),
                                 b.const("bh", np.round(bh / (H_Q[0] * whs)).astype(np.int32),
                                         scale=H_Q[0] * whs)], [hp], ops.FullyConnected())
        axis = b.const("axis", np.array(1, np.int32))
        xs = [t(f"x{g}", (1, H), q("xp")) for g in "zrn"]
        hs = [t(f"h{g}", (1, H), q("hp")) for g in "zrn"]
        b.op("SPLIT", [axis, xp], xs, ops.Split(num_splits=3))
        b.op("SPLIT", [axis, hp], hs, ops.Split(num_splits=3))
        zpre, rpre = t("zpre", (1, H), q("zpre")), t("rpre", (1, H), q("rpre"))
        b.op("ADD", [xs[0], hs[0]], [zpre], ops.Elementwise())
        b.op("ADD", [xs[1], hs[1]], [rpre], ops.Elementwise())
        z, r = t("z", (1, H), sig_q), t("r", (1, H), sig_q)
        b.op("LOGISTIC", [zpre], [z])
        b.op("LOGISTIC", [rpre], [r])
        rh, npre, n = t("rh", (1, H), q("rh")), t("npre", (1, H), q("npre")), t("n", (1, H), tanh_q)
        b.op("MUL", [r, hs[2]], [rh], ops.Elementwise())
        b.op("ADD", [xs[2], rh], [npre], ops.Elementwise())
        b.op("TANH", [npre], [n])
        one = b.const("one", np.array([[127]], np.int8), scale=1 / 127, zero_point=0)
        zh, omz, omzn = t("zh", (1, H), q("zh")), t("omz", (1, H), q("omz")), t("omzn", (1, H), q("omzn"))
        b.op("MUL", [z, bh_], [zh], ops.Elementwise())
        b.op("SUB", [one, z], [omz], ops.Elementwise())
        b.op("MUL", [omz, n], [omzn], ops.Elementwise())
        hn = t("h_next", (1, H), H_Q)
        b.op("ADD", [zh, omzn], [hn], ops.Elementwise())
        return [bx_, hn]

    outs = _loop(mb, [("x", (1, steps, feat), "int8", *in_q, x), ("h", (1, H), "int8", *H_Q, h0)], steps, body_fn)
    woq, wos = qw(wo)
    logits = mb.tensor("logits", (1, classes), "int8", *q("logits"))
    mb.op("FULLY_CONNECTED", [outs[3], mb.const("wo", woq, scale=wos),
                              mb.const("bo", np.round(bo / (H_Q[0] * wos)).astype(np.int32), scale=H_Q[0] * wos)],
          [logits], ops.FullyConnected())
    prob = mb.tensor("prob", (1, classes), "int8", 1 / 256, -128)
    mb.op("SOFTMAX", [logits], [prob], ops.Softmax(beta=1.0))
    mb.output(prob)
    return mb.build()


def nested_model(outer: int, inner: int, seed: int = 0, n: int = 16) -> bytes:
    """WHILE (outer times) { h = FC(h) + x; WHILE (inner times) { h = tanh(h * g) } }: a loop inside a body."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder(description="test_while nested")
    x = mb.input("x", (1, n), "int8", 0.04, 0)
    h0 = mb.const("h0", rng.integers(-60, 60, (1, n)).astype(np.int8), scale=H_Q[0], zero_point=H_Q[1])

    def inner_fn(b, i, carried):
        (bh,) = carried
        g = b.const("g", rng.integers(40, 127, (1, n)).astype(np.int8), scale=0.02, zero_point=0)
        m = b.tensor("m", (1, n), "int8", 0.015, 0)
        b.op("MUL", [bh, g], [m], ops.Elementwise())
        hn = b.tensor("h_in", (1, n), "int8", *H_Q)
        b.op("TANH", [m], [hn])
        return [hn]

    def outer_fn(b, i, carried):
        bx, bh = carried
        w = b.const("w", rng.integers(-127, 128, (n, n)).astype(np.int8), scale=0.004)
        f = b.tensor("f", (1, n), "int8", 0.03, 2)
        b.op("FULLY_CONNECTED", [bh, w, None], [f], ops.FullyConnected())
        s = b.tensor("s", (1, n), "int8", *H_Q)
        b.op("ADD", [f, bx], [s], ops.Elementwise())
        outs = _loop(mb, [("h", (1, n), "int8", *H_Q, s)], inner, inner_fn, host=b)
        return [bx, outs[2]]

    outs = _loop(mb, [("x", (1, n), "int8", 0.04, 0, x), ("h", (1, n), "int8", *H_Q, h0)], outer, outer_fn)
    mb.output(outs[3])
    return mb.build()

def _inputs(rng, model, n):
    g = load_model(model)
    return [[rng.integers(-128, 128, g.tensors[t].shape).astype(np.int8) for t in g.inputs] for _ in range(n)]


def _check(tmp_path, model, rng, n_cases=3, targets=(None, "cortex-m4")):
    xs = _inputs(rng, model, n_cases)
    for target in targets:
        bad = compare(model, xs, tmp_path / f"b_{target}", target=target)
        assert not bad, f"{target}: " + "; ".join(map(str, bad[:3]))


# ---- the unrolled graph ---------------------------------------------------------------------------------------
def test_unrolled_graph_has_one_body_copy_per_iteration():
    g = load_model(cell_model(5))
    assert g.meta["unrolled_loops"] == ((0, 5),)
    kinds = [op.kind for op in g.ops]
    assert kinds == ["FULLY_CONNECTED", "FULLY_CONNECTED", "ADD", "TANH"] * 5
    # no int32 counter arithmetic and no bool left; weights are shared by every iteration
    assert all(t.dtype == "int8" or (t.dtype == "int32" and t.is_const) for t in g.tensors.values())
    weights = {op.inputs[1] for op in g.ops if op.kind == "FULLY_CONNECTED"}
    assert len(weights) == 2
    # the loop-carried state threads from one iteration to the next and ends in the model's output
    tanh = [op for op in g.ops if op.kind == "TANH"]
    fc_h = [op for op in g.ops if op.kind == "FULLY_CONNECTED"][1::2]
    for prev, nxt in zip(tanh, fc_h[1:]):
        assert nxt.inputs[0] == prev.outputs[0]
    assert g.outputs == (tanh[-1].outputs[0],)
    assert g.tensors[g.outputs[0]].name == "h_out"


def test_counter_indexed_gather_is_folded_to_constant_indices():
    g = load_model(cell_model(4, seq=True))
    gathers = [op for op in g.ops if op.kind == "GATHER"]
    assert [int(g.tensors[op.inputs[1]].data) for op in gathers] == [0, 1, 2, 3]


def test_counter_built_slice_bounds_are_folded(tmp_path):
    """STRIDED_SLICE(x, PACK(0, i, 0), PACK(0, i, 0) + (1, 1, feat)): the bounds become constants. tflite-micro
    refuses this model ("Non-constant >begin< tensor is not supported"), so the compiled library is checked
    against tflite-micro running the equivalent GATHER form (same weights)."""
    model = cell_model(4, seed=3, seq="slice")
    g = load_model(model)
    slices = [op for op in g.ops if op.kind == "STRIDED_SLICE"]
    assert [g.tensors[op.inputs[1]].data.tolist() for op in slices] == [[0, t, 0] for t in range(4)]
    assert [g.tensors[op.inputs[2]].data.tolist() for op in slices] == [[1, t + 1, 12] for t in range(4)]
    assert not any(op.kind in ("PACK", "ADD") and g.tensors[op.outputs[0]].dtype == "int32" for op in g.ops)
    same = cell_model(4, seed=3, seq=True)
    rng = np.random.default_rng(77)
    for target in (None, "cortex-m4"):
        lib = specializer.compile(model, name="net", out_dir=tmp_path / f"o_{target}", target=target,
                                  verify_each=True).host_library(sanitize=True)
        for _ in range(3):
            x = rng.integers(-128, 128, (1, 4, 12)).astype(np.int8)
            np.testing.assert_array_equal(lib.run([x])[0].reshape(1, 16), run_tflm(same, [x])[0])

def test_oracle_runs_the_while_model():
    """tflite-micro runs the WHILE itself; one more iteration gives a different result."""
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (1, 12)).astype(np.int8)
    a = run_tflm(cell_model(3, seed=1), [x])[0]
    b = run_tflm(cell_model(4, seed=1), [x])[0]
    assert a.shape == (1, 16) and not np.array_equal(a, b)


# ---- bit-exact against tflite-micro -----------------------------------------------------------------------------
@pytest.mark.parametrize("n_iter", [3, 4, 5, 6, 7, 8])
def test_cell_bit_exact(tmp_path, n_iter):
    _check(tmp_path, cell_model(n_iter, seed=n_iter), np.random.default_rng(100 + n_iter))


@pytest.mark.parametrize("n_iter", [3, 6])
def test_sequence_cell_bit_exact(tmp_path, n_iter):
    _check(tmp_path, cell_model(n_iter, seed=20 + n_iter, seq=True), np.random.default_rng(200 + n_iter))


@pytest.mark.parametrize("n_iter", [3, 8])
def test_accumulate_bit_exact(tmp_path, n_iter):
    _check(tmp_path, accumulate_model(n_iter, seed=n_iter), np.random.default_rng(300 + n_iter))



@pytest.mark.parametrize("steps", [4, 8])
def test_gru_while_bit_exact(tmp_path, steps):
    model = gru_while_model(steps, seed=steps)
    g = load_model(model)
    assert g.meta["unrolled_loops"] == ((0, steps),)
    kinds = [op.kind for op in g.ops]
    assert kinds.count("GATHER") == steps and kinds.count("TANH") == steps and kinds[-1] == "SOFTMAX"
    _check(tmp_path, model, np.random.default_rng(400 + steps), n_cases=4)


def test_nested_while_bit_exact(tmp_path):
    model = nested_model(3, 2, seed=4)
    g = load_model(model)
    assert [op.kind for op in g.ops] == ["FULLY_CONNECTED", "ADD"] + ["MUL", "TANH"] * 2 + \
        (["FULLY_CONNECTED", "ADD"] + ["MUL", "TANH"] * 2) * 2
    _check(tmp_path, model, np.random.default_rng(500), n_cases=4)

# ---- refused control flow -----------------------------------------------------------------------------------------
def _cli_error(tmp_path, capsys, data: bytes):
    model = tmp_path / "m.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    rc = main(["compile", str(model), "-o", str(out)])
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("specializer: error: "), err
    assert "Traceback" not in err
    assert not out.exists()
    return lines[0]


def _passthrough_loop(mb, n_from_input=False, n_iter=3, increment=True):
    x = mb.input("x", (1, 8), "int8", 0.1, 0)

    def body_fn(b, i, carried):
        (bx,) = carried
        y = b.tensor("y", (1, 8), "int8", 0.1, 0)
        b.op("RELU", [bx], [y])
        return [y]

    outs = _loop(mb, [("x", (1, 8), "int8", 0.1, 0, x)], n_iter, body_fn, n_from_input=n_from_input)
    mb.output(outs[2])
    return mb


def test_data_dependent_trip_count_is_refused(tmp_path, capsys):
    data = _passthrough_loop(ModelBuilder(), n_from_input=True).build()
    line = _cli_error(tmp_path, capsys, data)
    assert "op #0 WHILE: the trip count is not a compile-time constant" in line
    assert "'n', loop value 1, which is not a constant" in line
    assert "only WHILE loops whose trip count is a compile-time constant are supported" in line
    with pytest.raises(ControlFlowError):
        specializer.compile(data, out_dir=None)


def test_endless_loop_is_refused(tmp_path, capsys):
    """The body forgets to increment the counter: `i < 3` stays true."""
    mb = ModelBuilder()
    x = mb.input("x", (1, 8), "int8", 0.1, 0)
    i0, n = mb.const("i0", np.array(0, np.int32)), mb.const("n", np.array(3, np.int32))
    cond = mb.subgraph("cond")
    ci, cn, cx = cond.tensor("i", (), "int32"), cond.tensor("n", (), "int32"), cond.tensor("x", (1, 8), "int8", 0.1, 0)
    cf = cond.tensor("f", (), "bool")
    cond.raw_op("LESS", [ci, cn], [cf])
    cond.inputs, cond.outputs = [ci, cn, cx], [cf]
    body = mb.subgraph("body")
    bi, bn, bx = body.tensor("i", (), "int32"), body.tensor("n", (), "int32"), body.tensor("x", (1, 8), "int8", 0.1, 0)
    body.inputs, body.outputs = [bi, bn, bx], [bi, bn, bx]
    outs = [mb.tensor("i_out", (), "int32"), mb.tensor("n_out", (), "int32"), mb.tensor("y", (1, 8), "int8", 0.1, 0)]
    mb.control_op("WHILE", [i0, n, x], outs, cond=cond, body=body)
    mb.output(outs[2])
    line = _cli_error(tmp_path, capsys, mb.build())
    assert "op #0 WHILE: the loop runs more than 4096 iterations" in line


def test_if_is_refused(tmp_path, capsys):
    mb = ModelBuilder()
    c = mb.input("c", (), "bool")
    x = mb.input("x", (1, 8), "int8", 0.1, 0)
    subs = []
    for nm, kind in (("then", "RELU"), ("else", "RELU6")):
        s = mb.subgraph(nm)
        a, b = s.tensor("x", (1, 8), "int8", 0.1, 0), s.tensor("y", (1, 8), "int8", 0.1, 0)
        s.op(kind, [a], [b])
        s.inputs, s.outputs = [a], [b]
        subs.append(s)
    y = mb.tensor("y", (1, 8), "int8", 0.1, 0)
    mb.control_op("IF", [c, x], [y], then=subs[0], else_=subs[1])
    mb.output(y)
    data = mb.build()
    line = _cli_error(tmp_path, capsys, data)
    assert "op #0 IF: IF (control flow) is not supported; only WHILE loops whose trip count is a compile-time " \
           "constant are supported" in line
    with pytest.raises(UnsupportedOpError):  # a ControlFlowError is an UnsupportedOpError
        load_model(data)


def test_call_once_is_refused():
    mb = ModelBuilder()
    x = mb.input("x", (1, 8), "int8", 0.1, 0)
    y = mb.tensor("y", (1, 8), "int8", 0.1, 0)
    init = mb.subgraph("init")
    mb.control_op("CALL_ONCE", [], [], init=init)
    mb.op("RELU", [x], [y])
    mb.output(y)
    with pytest.raises(ControlFlowError, match=r"op #0 CALL_ONCE: CALL_ONCE \(control flow\) is not supported"):
        load_model(mb.build())


def test_loop_value_changing_quantization_is_refused():
    mb = ModelBuilder()
    x = mb.input("x", (1, 8), "int8", 0.1, 0)

    def body_fn(b, i, carried):
        (bx,) = carried
        y = b.tensor("y", (1, 8), "int8", 0.2, 0)  # not the scale of the body's input
        b.op("RELU", [bx], [y])
        return [y]

    outs = _loop(mb, [("x", (1, 8), "int8", 0.1, 0, x)], 3, body_fn)
    mb.output(outs[2])
    with pytest.raises(ControlFlowError, match="loop value 2 changes between 'y@0'"):
        load_model(mb.build())


def test_zero_trip_loop_passing_the_input_through_is_refused():
    with pytest.raises(ControlFlowError, match="passes a model input or another output through unchanged"):
        load_model(_passthrough_loop(ModelBuilder(), n_iter=0).build())


def test_damaged_while_models_give_clean_errors():
    """Random byte damage to a WHILE model: a SpecializerError or a successful compile, never another exception."""
    import random

    from specializer.errors import SpecializerError

    base = cell_model(4, seed=2, seq=True)
    rng = random.Random(9)
    for case in range(300):
        b = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(8, len(b) - 4)
            if rng.random() < 0.5:
                b[pos] = rng.randrange(256)
            else:
                b[pos:pos + 4] = rng.randrange(1 << 32).to_bytes(4, "little")
        try:
            load_model(bytes(b))
            specializer.compile(bytes(b), out_dir=None)
        except SpecializerError as e:
            assert "\n" not in str(e)
        except Exception as e:  # pragma: no cover - the contract is broken
            raise AssertionError(f"case {case}: {type(e).__name__}: {e}") from e
