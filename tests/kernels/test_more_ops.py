"""ADD_N, SQUARED_DIFFERENCE, RESIZE_BILINEAR, ARG_MAX/ARG_MIN (int8 in, int32 indices out), LOG_SOFTMAX: random
layers against tflite-micro on the host under ASan/UBSan (generic and Cortex-M4 builds): edge sizes (1-element
dimensions, odd extents), zero points at -128/127, scales over orders of magnitude, 2..5 ADD_N inputs (in-place
chains too), SQUARED_DIFFERENCE broadcasts of rank 1..7 either side, resizes up and down with align_corners /
half_pixel_centers, ARG_MAX/ARG_MIN over every axis (negative too) with ties, int32 and int8 outputs in one model,
LOG_SOFTMAX rows of 1..1000 elements; then the one-line refusals of layers TFLite Micro itself refuses or gets
wrong."""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.cli import main
from specializer.errors import UnsupportedTypeError
from specializer.oracle import compare
from specializer.tflite_writer import ModelBuilder
from spz_testutil import broadcast_shapes
from spz_randlayers import _zp, layers_model, random_inputs

PER_MODEL = 8


def _shape(rng, rank=None):
    """Extents 1..7, often 1 (edge sizes), rank 1..4 unless given."""
    rank = rank or int(rng.integers(1, 5))
    return tuple(1 if rng.random() < 0.25 else int(rng.integers(1, 8)) for _ in range(rank))


def _check(tmp_path, rng, n, add, target, per=PER_MODEL):
    for m in range(0, n, per):
        model, specs, descs = layers_model(rng, min(per, n - m), add)
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{m}", target=target)
        assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def _refused(tmp_path, capsys, mb, *fragments):
    src = tmp_path / "m.tflite"
    src.write_bytes(mb.build())
    assert main(["compile", str(src), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, (f, err)
    assert not (tmp_path / "out").exists()


# ---- ADD_N ------------------------------------------------------------------------------------------------------
def _add_n(mb, rng, i):
    shape = _shape(rng)
    k = int(rng.integers(2, 6))
    s, zp = float(10 ** rng.uniform(-3, 0)), _zp(rng)
    so, zo = s * float(10 ** rng.uniform(-0.5, 1.5)), _zp(rng)
    xs = [mb.input(f"x{i}_{j}", shape, scale=s, zero_point=zp) for j in range(k)]
    y = mb.tensor(f"y{i}", shape, scale=so, zero_point=zo)
    mb.op("ADD_N", xs, [y])
    mb.output(y)
    return [(shape, zp)] * k, f"ADD_N {k} x {shape} s={s:.3g} zp={zp} -> s={so:.3g} zp={zo}"


@pytest.mark.parametrize("target,seed", [(None, 201), ("cortex-m4", 202)])
def test_add_n_random_layers(tmp_path, target, seed, sweep):
    _check(tmp_path, np.random.default_rng(seed), sweep(24), _add_n, target)


def test_add_n_chain_in_place(tmp_path):
    """ADD_N feeding ADD_N (the output may reuse an input's buffer), 15 inputs at the worst zero point."""
    rng = np.random.default_rng(203)
    mb = ModelBuilder()
    xs = [mb.input(f"x{j}", (3, 5, 7), scale=0.02, zero_point=-128) for j in range(15)]
    t = mb.tensor("t", (3, 5, 7), scale=0.3, zero_point=127)
    mb.op("ADD_N", xs, [t])
    u = mb.tensor("u", (3, 5, 7), scale=0.5, zero_point=-3)
    mb.op("ADD_N", [t, t, t], [u])
    mb.output(u)
    bad = compare(mb.build(), random_inputs(rng, [((3, 5, 7), -128)] * 15, n_sets=2), tmp_path / "m")
    assert not bad, "; ".join(map(str, bad[:5]))


def test_add_n_mixed_quantization_is_refused(tmp_path, capsys):
    """TFLite Micro's int8 ADD_N prepare fails unless every input shares the first one's scale and zero point."""
    mb = ModelBuilder()
    a = mb.input("a", (2, 3), scale=0.1, zero_point=3)
    b = mb.input("b", (2, 3), scale=0.2, zero_point=3)
    y = mb.tensor("y", (2, 3), scale=0.1, zero_point=0)
    mb.op("ADD_N", [a, b], [y])
    mb.output(y)
    _refused(tmp_path, capsys, mb, "op #0 ADD_N", "share the first input's scale and zero point")


def test_add_n_overflowing_sum_is_refused(tmp_path, capsys):
    mb = ModelBuilder()
    xs = [mb.input(f"x{j}", (4,), scale=0.1, zero_point=-128) for j in range(16)]
    y = mb.tensor("y", (4,), scale=1.0, zero_point=0)
    mb.op("ADD_N", xs, [y])
    mb.output(y)
    _refused(tmp_path, capsys, mb, "op #0 ADD_N", "could overflow")


# ---- SQUARED_DIFFERENCE --------------------------------------------------------------------------------------
def _squared_difference(mb, rng, i):
    sa, sb = broadcast_shapes(rng, max_rank=7, p_equal=0.25)
    s1, s2 = float(10 ** rng.uniform(-3, 0)), float(10 ** rng.uniform(-3, 0))
    big = max(s1, s2) ** 2
    # natural output scales (255 s)^2 / 255 and around, plus tiny ones (multiplier > 1: a left shift)
    so = big * float(10 ** (rng.uniform(-5, -3) if rng.random() < 0.15 else rng.uniform(0, 3.5)))
    z1, z2, zo = _zp(rng), _zp(rng), _zp(rng)
    a = mb.input(f"a{i}", sa, scale=s1, zero_point=z1)
    b = mb.input(f"b{i}", sb, scale=s2, zero_point=z2)
    y = mb.tensor(f"y{i}", tuple(np.broadcast_shapes(sa, sb)), scale=so, zero_point=zo)
    mb.op("SQUARED_DIFFERENCE", [a, b], [y])
    mb.output(y)
    return [(sa, z1), (sb, z2)], f"SQUARED_DIFFERENCE {sa} {sb} s={s1:.3g},{s2:.3g} zp={z1},{z2} -> {so:.3g}/{zo}"


@pytest.mark.parametrize("target,seed", [(None, 211), ("cortex-m4", 212)])
def test_squared_difference_random_layers(tmp_path, target, seed, sweep):
    _check(tmp_path, np.random.default_rng(seed), sweep(32), _squared_difference, target)


def test_squared_difference_rank8_broadcast_is_refused(tmp_path, capsys):
    """TFLite Micro's rank-8 broadcast gives wrong elements (compared with numpy on the oracle): refused."""
    mb = ModelBuilder()
    a = mb.input("a", (1, 1, 1, 1, 1, 1, 2, 3), scale=0.05, zero_point=3)
    b = mb.input("b", (1, 1, 1, 1, 1, 1, 2, 1), scale=0.03, zero_point=-5)
    y = mb.tensor("y", (1, 1, 1, 1, 1, 1, 2, 3), scale=0.01, zero_point=-100)
    mb.op("SQUARED_DIFFERENCE", [a, b], [y])
    mb.output(y)
    _refused(tmp_path, capsys, mb, "op #0 SQUARED_DIFFERENCE", "rank-8")


# ---- RESIZE_BILINEAR -----------------------------------------------------------------------------------------
def _resize_bilinear(mb, rng, i):
    n, c = int(rng.integers(1, 3)), int(rng.choice([1, 2, 3, 4, 5, 8]))
    ih, iw = (1 if rng.random() < 0.2 else int(rng.integers(1, 9)) for _ in range(2))
    # up, down, equal, 1-pixel outputs and (rarely) large upscales within TFLM's bounds
    oh, ow = (int(rng.choice([1, max(1, v // 2), v, v + 1, 2 * v, 3 * v + 1, int(rng.integers(1, 13))]))
              for v in (ih, iw))
    mode = int(rng.integers(0, 3))
    attrs = ops.ResizeBilinear(align_corners=mode == 1, half_pixel_centers=mode == 2)
    s, zp = float(10 ** rng.uniform(-3, 0)), _zp(rng)
    x = mb.input(f"x{i}", (n, ih, iw, c), scale=s, zero_point=zp)
    y = mb.tensor(f"y{i}", (n, oh, ow, c), scale=s, zero_point=zp)
    mb.op("RESIZE_BILINEAR", [x, mb.const(f"s{i}", np.array([oh, ow], np.int32))], [y], attrs)
    mb.output(y)
    return [((n, ih, iw, c), zp)], f"RESIZE_BILINEAR {(n, ih, iw, c)} -> {oh}x{ow} {attrs}"


@pytest.mark.parametrize("target,seed", [(None, 221), ("cortex-m4", 222)])
def test_resize_bilinear_random_layers(tmp_path, target, seed, sweep):
    _check(tmp_path, np.random.default_rng(seed), sweep(40), _resize_bilinear, target, per=10)


def test_resize_bilinear_edges(tmp_path):
    """Every flag on the same odd geometries (3x5 -> 7x2, 1x1 -> 4x3, 6x7 -> 1x1, a 40x upscale of one pixel)
    and an output quantization that differs from the input's (TFLM interpolates raw values: so does the kernel)."""
    rng = np.random.default_rng(223)
    mb = ModelBuilder()
    specs = []
    geoms = [((1, 3, 5, 3), (7, 2)), ((2, 1, 1, 2), (4, 3)), ((1, 6, 7, 1), (1, 1)), ((1, 1, 2, 1), (40, 9))]
    for i, ((shape, (oh, ow)), (ac, hp)) in enumerate((g, f) for g in geoms
                                                      for f in ((False, False), (True, False), (False, True))):
        x = mb.input(f"x{i}", shape, scale=0.05, zero_point=-128 if i % 2 else 127)
        y = mb.tensor(f"y{i}", (shape[0], oh, ow, shape[3]), scale=0.07 if i == 5 else 0.05,
                      zero_point=3 if i == 5 else (-128 if i % 2 else 127))
        mb.op("RESIZE_BILINEAR", [x, mb.const(f"s{i}", np.array([oh, ow], np.int32))], [y],
              ops.ResizeBilinear(align_corners=ac, half_pixel_centers=hp))
        mb.output(y)
        specs.append((shape, 0))
    bad = compare(mb.build(), random_inputs(rng, specs, n_sets=2), tmp_path / "m")
    assert not bad, "; ".join(map(str, bad[:5]))


@pytest.mark.parametrize("size,flags,why", [
    ((4, 4), (True, True), "half_pixel_centers is True, align_corners must be False"),
    ((55, 3), (False, False), "reads out of bounds"),
])
def test_resize_bilinear_refusals(tmp_path, capsys, size, flags, why):
    mb = ModelBuilder()
    x = mb.input("x", (1, 1, 3, 2), scale=0.1, zero_point=0)
    y = mb.tensor("y", (1, *size, 2), scale=0.1, zero_point=0)
    mb.op("RESIZE_BILINEAR", [x, mb.const("s", np.array(size, np.int32))], [y],
          ops.ResizeBilinear(align_corners=flags[0], half_pixel_centers=flags[1]))
    mb.output(y)
    _refused(tmp_path, capsys, mb, "op #0 RESIZE_BILINEAR", why)


# ---- ARG_MAX / ARG_MIN -------------------------------------------------------------------------------------
def _arg(mb, rng, i):
    kind = ("ARG_MAX", "ARG_MIN")[i % 2]
    shape = _shape(rng, int(rng.integers(1, 6)))
    rank = len(shape)
    ax = int(rng.integers(-rank, rank))
    a = ax + rank if ax < 0 else ax
    zp = _zp(rng)
    x = mb.input(f"x{i}", shape, scale=float(10 ** rng.uniform(-3, 0)), zero_point=zp)
    y = mb.tensor(f"y{i}", shape[:a] + shape[a + 1:], dtype="int32")
    axis = np.array([ax] if rng.random() < 0.5 else ax, np.int32)  # 1-element vector or scalar
    mb.op(kind, [x, mb.const(f"ax{i}", axis)], [y], ops.ArgMinMax(output_type="int32"))
    mb.output(y)
    return [(shape, zp)], f"{kind} {shape} axis {ax}"


def _arg_inputs(rng, specs):
    """Full range; few distinct values (many ties); every element equal (all ties: index 0)."""
    return [[rng.integers(-128, 128, size=s).astype(np.int8) for s, _ in specs],
            [rng.choice(np.array([-128, -1, 0, 127], np.int8), size=s) for s, _ in specs],
            [np.full(s, int(rng.integers(-128, 128)), np.int8) for s, _ in specs]]


@pytest.mark.parametrize("target,seed", [(None, 231), ("cortex-m4", 232)])
def test_arg_min_max_random_layers(tmp_path, target, seed, sweep):
    """ARG layers and one int8 layer per model: int32 and int8 outputs mix (the `void *` output accessor)."""
    rng = np.random.default_rng(seed)
    n = sweep(40)
    for m in range(0, n, 20):
        k = min(20, n - m)
        model, specs, descs = layers_model(rng, k + 1, lambda mb, r, i: _arg(mb, r, i) if i < k
                                           else _add_n(mb, r, i))
        bad = compare(model, _arg_inputs(rng, specs), tmp_path / f"m{m}", target=target)
        assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def test_arg_max_only_int32_outputs(tmp_path):
    """A model whose outputs are all int32 indices: `int32_t *` accessor; the indices feed nothing else."""
    rng = np.random.default_rng(233)
    model, specs, _ = layers_model(rng, 2, _arg)
    res = specializer.compile(model, out_dir=tmp_path / "o")
    h = (tmp_path / "o" / "net.h").read_text()
    assert "int32_t *net_output(uint8_t *arena, int index);" in h and "NET_OUTPUT1_IS_INT32 1" in h
    assert [o.dtype for o in res.outputs] == ["int32", "int32"]
    bad = compare(model, _arg_inputs(rng, specs), tmp_path / "m")
    assert not bad, "; ".join(map(str, bad[:5]))


@pytest.mark.parametrize("kind", ["ARG_MAX", "ARG_MIN"])
@pytest.mark.parametrize("what", ["output", "axis"])
def test_arg_int64_is_refused(tmp_path, capsys, kind, what):
    """TFLite Micro's ARG_MAX/ARG_MIN write int32 indices from an int32 axis only ("Only int32_t are supported
    currently, got INT64"): int64 outputs and axes are refused by the importer, naming the op."""
    mb = ModelBuilder()
    x = mb.input("x", (2, 3), scale=0.1, zero_point=0)
    y = mb.tensor("y", (2,), dtype="int64" if what == "output" else "int32")
    ax = mb.const("ax", np.array([1], np.int64 if what == "axis" else np.int32))
    mb.op(kind, [x, ax], [y], ops.ArgMinMax(output_type="int64" if what == "output" else "int32"))
    mb.output(y)
    _refused(tmp_path, capsys, mb, f"op #0 {kind}", "is int64", "Only int32_t are supported currently, got INT64")
    with pytest.raises(UnsupportedTypeError):
        specializer.compile(mb.build(), out_dir=None)


# ---- LOG_SOFTMAX ---------------------------------------------------------------------------------------------
def _log_softmax(mb, rng, i):
    shape = _shape(rng, int(rng.integers(1, 4)))
    if rng.random() < 0.2:
        shape = shape[:-1] + (int(rng.integers(100, 1000)),)  # long rows: sums far above 1
    s, zp = float(10 ** rng.uniform(-6, 2)), _zp(rng)  # input scales from tiny to saturating the Q5.26 range
    x = mb.input(f"x{i}", shape, scale=s, zero_point=zp)
    y = mb.tensor(f"y{i}", shape, scale=16 / 256, zero_point=127)  # what TFLM's prepare requires
    mb.op("LOG_SOFTMAX", [x], [y])
    mb.output(y)
    return [(shape, zp)], f"LOG_SOFTMAX {shape} s={s:.3g}"


@pytest.mark.parametrize("target,seed", [(None, 251), ("cortex-m4", 252)])
def test_log_softmax_random_layers(tmp_path, target, seed, sweep):
    rng = np.random.default_rng(seed)
    n = sweep(32)
    for m in range(0, n, 16):
        model, specs, descs = layers_model(rng, min(16, n - m), _log_softmax)
        inputs = random_inputs(rng, specs, n_sets=2) + _arg_inputs(rng, specs)[1:]  # + ties, equal rows
        bad = compare(model, inputs, tmp_path / f"m{m}", target=target)
        assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def test_log_softmax_log_matches_python_twin():
    """The C log (spz_fp_log_x_ge_1) is checked end to end above; its Python twin against float log here."""
    import math

    from specializer.fixedpoint import log_x_ge_1

    for x in (1 << 19, (1 << 19) + 1, 3 << 19, 1000 << 19, (1 << 31) - 1):
        got = log_x_ge_1(x, 12, 5) / float(1 << 26)
        assert abs(got - math.log(x / float(1 << 19))) < 1e-6, (x, got)


@pytest.mark.parametrize("in_scale,shape,scale,zp,why", [
    (0.1, (2, 5), 0.1, 127, "scale 16/256 and zero point 127"),
    (0.1, (2, 5), 16 / 256, 0, "scale 16/256 and zero point 127"),
    (1e-9, (2, 5), 16 / 256, 127, "below 2^-26"),
    (0.1, (1, 4096), 16 / 256, 127, "only safe below 4096"),
])
def test_log_softmax_refusals(tmp_path, capsys, in_scale, shape, scale, zp, why):
    mb = ModelBuilder()
    x = mb.input("x", shape, scale=in_scale, zero_point=0)
    y = mb.tensor("y", shape, scale=scale, zero_point=zp)
    mb.op("LOG_SOFTMAX", [x], [y])
    mb.output(y)
    _refused(tmp_path, capsys, mb, "op #0 LOG_SOFTMAX", why)


# ---- all of them: warning-free C (host compilers, arm-none-eabi-gcc for the M4), the simulated M4 ------------
def _all_ops_model(rng):
    kinds = (_add_n, _squared_difference, _resize_bilinear, _arg, _log_softmax)
    return layers_model(rng, 10, lambda mb, r, i: kinds[i % len(kinds)](mb, r, i))


@pytest.mark.parametrize("cc,target,flags", [
    ("gcc", None, ()), ("clang", None, ()),
    ("arm-none-eabi-gcc", "cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")),
])
def test_generated_c_is_warning_free(tmp_path, cc, target, flags):
    import shutil
    import subprocess

    if not shutil.which(cc):
        pytest.skip(f"{cc} not installed")
    model, _, _ = _all_ops_model(np.random.default_rng(241))
    specializer.compile(model, name="net", out_dir=tmp_path / "o", target=target)
    src = sorted(str(p) for p in (tmp_path / "o").glob("*.c"))
    r = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", *flags, "-c", *src,
                        f"-I{tmp_path / 'o'}"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_all_ops_in_simulator(tmp_path):
    from spz_randlayers import sim_mismatches

    rng = np.random.default_rng(242)
    model, specs, descs = _all_ops_model(rng)
    bad, _ = sim_mismatches(model, _arg_inputs(rng, specs)[:2], tmp_path / "m", opt="-O2")
    assert not bad, "; ".join(map(str, bad[:5])) + " | " + "; ".join(descs)
