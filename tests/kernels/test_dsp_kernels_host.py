"""The specialized Cortex-M kernels built for the host: the same C with the portable twins of the Arm intrinsics,
under ASan/UBSan, against tflite-micro on randomized layers (the simulator test runs the real instructions).
Also checks the twins' contracts the kernels rely on, and that the registry falls back to the generic kernel."""
from __future__ import annotations

import numpy as np
import pytest

from specializer.oracle import compare
from spz_randlayers import random_inputs, random_model

PER_MODEL = 12


@pytest.mark.parametrize("kinds,seed,default", [(("conv",), 71, 48), (("dw",), 72, 36), (("fc", "add"), 73, 36)])
def test_dsp_kernels_host_twins(tmp_path, kinds, seed, default, sweep):
    rng = np.random.default_rng(seed)
    n = sweep(default)
    for m in range((n + PER_MODEL - 1) // PER_MODEL):
        model, specs, descs = random_model(rng, min(PER_MODEL, n - m * PER_MODEL), kinds)
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{m}", target="cortex-m4")
        assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])

# the planar depthwise's forms: blocks looped or unrolled, shifts loaded or specialized
PN_FORMS = ({"PN": True, "PU": True, "PS": True}, {"PN": True, "PU": False, "PS": False},
            {"PN": True, "PU": True, "PS": False})


def test_fast_requantization_identity_matches_tflite():
    """spz_rq2's identity (SMMLAR on 2*acc, sign, shift) against TFLite's double rounding, in Python."""
    from specializer.quant import mbqm

    rng = np.random.default_rng(7)
    for _ in range(20000):
        m = int(rng.integers(1 << 30, 1 << 31))
        e = int(rng.integers(1, 24))
        zp = int(rng.integers(-128, 128))
        acc = int(rng.integers(-(1 << 29), 1 << 29)) if rng.random() < 0.5 else int(rng.integers(-5000, 5000))
        k = (1 << (e - 1)) + (zp << e)
        t = (k * (1 << 32) + 2 * acc * m + (1 << 31)) >> 32  # SMMLAR
        got = (t + (-1 if acc < 0 else 0)) >> e
        assert got == mbqm(acc, m, -e) + zp, (acc, m, e, zp)


def test_registry_falls_back_to_generic(tmp_path):
    """A grouped convolution and a depthwise with 3 channels have no DSP kernel: the generic one runs them."""
    import specializer
    from specializer.tflite_writer import ModelBuilder
    from spz_randlayers import add_conv_layer

    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    add_conv_layer(mb, rng, "g", False, force={"geom": (6, 6, 3, 3, 1, 1, 1, 1, "SAME"), "groups": 2})
    add_conv_layer(mb, rng, "d", True, force={"geom": (6, 6, 3, 3, 1, 1, 1, 1, "SAME"), "mult": 1}, channels=(3,))
    res = specializer.compile(mb.build(), name="fb", out_dir=tmp_path / "o", target="cortex-m4")
    assert [op.kernel.entry for op in res.graph.ops] == ["conv2d_s8", "depthwise_conv2d_s8"]


def test_in_place_depthwise_host_twins(tmp_path):
    """The in-place depthwise under ASan: stride 1 SAME layers (odd and even kernels), outputs over inputs."""
    from specializer.tflite_writer import ModelBuilder
    from spz_randlayers import add_conv_layer

    rng = np.random.default_rng(67)
    mb = ModelBuilder()
    specs = []
    for k in range(10):
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        geom = (int(rng.integers(kh, 10)), int(rng.integers(kw, 10)), kh, kw, 1, 1, 1, 1, "SAME")
        shape, zp, _ = add_conv_layer(mb, rng, str(k), True, force={"geom": geom, "mult": 1}, channels=(4, 8, 12))
        specs.append((shape, zp))
    bad = compare(mb.build(), random_inputs(rng, specs), tmp_path / "o", target="cortex-m4", prefer={"IP": True})
    assert not bad, f"not bit-exact: {bad[:3]}"


def test_rows_depthwise_host_twins(tmp_path, sweep):
    """The rows depthwise (int16 row window per 4 channels) under ASan: any kernel, stride, dilation, padding;
    same-shape layers in place."""
    from spz_randlayers import rows_depthwise_model

    rng = np.random.default_rng(69)
    n = sweep(24)
    for m in range((n + 11) // 12):
        model, specs = rows_depthwise_model(rng, str(m), min(12, n - 12 * m))
        bad = compare(model, random_inputs(rng, specs), tmp_path / f"o{m}", target="cortex-m4",
                      prefer={"RW": True})
        assert not bad, f"not bit-exact: {bad[:3]}"


def test_planar_depthwise_host_twins(tmp_path, sweep):
    """The planar depthwise (one channel at a time, its plane as int16 columns) under ASan: any kernel, stride,
    dilation, padding; in place wherever the input dies."""
    from spz_randlayers import rows_depthwise_model

    rng = np.random.default_rng(81)
    n = sweep(36)
    for m in range((n + 11) // 12):
        model, specs = rows_depthwise_model(rng, str(m), min(12, n - 12 * m), max_w=40 if m % 2 else 14)
        bad = compare(model, random_inputs(rng, specs), tmp_path / f"o{m}", target="cortex-m4",
                      prefer=PN_FORMS[m % len(PN_FORMS)])
        assert not bad, f"not bit-exact: {bad[:3]}"


# the chunked planar depthwise's forms: chunk heights, blocks looped or unrolled, shifts loaded or specialized
PC_FORMS = ({"PC": 8}, {"PC": 12, "PU": False}, {"PC": 16, "PS": False}, {"PC": 8, "PU": False, "PS": False})


def test_chunked_planar_depthwise_host_twins(tmp_path, sweep):
    """The planar depthwise gathering its plane a chunk of rows at a time (the halo kept in the scratch) under
    ASan: kernels 1-5, any width, heights 8, 12 or 16 divide; in place wherever the input dies."""
    from specializer.api import lower
    from spz_randlayers import chunked_depthwise_model

    rng = np.random.default_rng(83)
    n = sweep(36)
    chunked = 0
    for m in range((n + 11) // 12):
        prefer = PC_FORMS[m % len(PC_FORMS)]
        model, specs = chunked_depthwise_model(rng, str(m), min(12, n - 12 * m), prefer["PC"])
        g, _ = lower(model, "cortex-m4", prefer=prefer)
        chunked += sum(dict(op.kernel.variant).get("PC") == prefer["PC"] for op in g.ops if op.kernel and op.kernel.variant)
        bad = compare(model, random_inputs(rng, specs), tmp_path / f"o{m}", target="cortex-m4", prefer=prefer)
        assert not bad, f"not bit-exact: {bad[:3]}"
    assert chunked >= n // 2, f"only {chunked} of {n} layers chunked"


def test_x8_conv_host_twins(tmp_path, sweep):
    """Convolutions with the x8 weight format (raw int8 weight words, A/B columns, zero point in the bias),
    im2col and rows, with padding and strides, under ASan."""
    from spz_randlayers import random_model

    rng = np.random.default_rng(74)
    n = sweep(24)
    for m in range((n + 11) // 12):
        model, specs, descs = random_model(rng, min(12, n - 12 * m), ("conv",))
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{m}", target="cortex-m4",
                      prefer={"WFMT": "x8"})
        assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def test_x8_blocks_of_3_host_twins(tmp_path):
    """x8 convolutions in blocks of 3 output channels (the tail block of 1 or 2 channels looped 4 steps at a time,
    weight words loaded in runs behind the column words) under ASan."""
    rng = np.random.default_rng(76)
    model, specs, descs = random_model(rng, 12, ("conv",))
    bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", target="cortex-m4",
                  prefer={"WFMT": "x8", "OCB": 3})
    assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def test_ring_conv_host_twins(tmp_path):
    """Convolutions with the ring row buffer under ASan (slot copies, padded rows, strides)."""
    rng = np.random.default_rng(75)
    model, specs, descs = random_model(rng, 12, ("conv",))
    bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", target="cortex-m4",
                  prefer={"RING": True})
    assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


@pytest.mark.parametrize("seg,seed", [(2, 77), (8, 78)])
def test_segment_conv_host_twins(tmp_path, seg, seed):
    """Convolutions whose KH buffer rows hold one segment of SEG output pixels (the form fused row bands use for
    little scratch): pads written per segment, padded rows, odd row ends, under ASan."""
    from specializer.api import lower
    from spz_randlayers import random_model

    rng = np.random.default_rng(seed)
    model, specs, descs = random_model(rng, 24, ("conv",))
    g, _ = lower(model, "cortex-m4", prefer={"SEG": seg})
    assert any(dict(op.kernel.variant).get("SEG") == seg for op in g.ops if op.kernel is not None)
    bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", target="cortex-m4",
                  prefer={"SEG": seg})
    assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def test_fc_xt_in_place_host_twins(tmp_path):
    """FULLY_CONNECTED with the XT transform kept in place (only B, over the dying input's own words; several
    input rows, depths not a multiple of 4 fall back to the scratch form) under ASan."""
    from specializer.api import lower

    rng = np.random.default_rng(79)
    model, specs, descs = random_model(rng, 12, ("fc",))
    g, _ = lower(model, "cortex-m4", prefer={"IP": True})
    assert any(op.kernel.clobbers for op in g.ops if op.kernel is not None)
    bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", target="cortex-m4",
                  prefer={"IP": True})
    assert not bad, "not bit-exact: " + "; ".join(f"{b} [{descs[b.output]}]" for b in bad[:5])


def test_fc_in_place_only_where_the_input_dies(tmp_path):
    """An input two layers read is never a kernel's working memory, and check_plan rejects a plan that lets it."""
    import dataclasses

    from specializer import ops
    from specializer.api import lower
    from specializer.ir import IRError
    from specializer.passes.plan_memory import check_plan
    from specializer.tflite_writer import ModelBuilder

    rng = np.random.default_rng(80)
    mb = ModelBuilder()
    x = mb.input("x", (1, 64), scale=0.05, zero_point=3)
    for i in range(2):
        w = mb.const(f"w{i}", rng.integers(-127, 128, size=(16, 64)).astype(np.int8), scale=np.full(16, 0.01), axis=0)
        y = mb.tensor(f"y{i}", (1, 16), scale=0.2, zero_point=-1)
        mb.op("FULLY_CONNECTED", [x, w, None], [y], ops.FullyConnected(activation="NONE"))
        mb.output(y)
    g, _ = lower(mb.build(), "cortex-m4", prefer={"IP": True})
    fcs = [op for op in g.ops if op.kind == "FULLY_CONNECTED"]
    assert len(fcs) == 2 and not any(op.kernel.clobbers for op in fcs)
    forced = g.with_ops([dataclasses.replace(op, kernel=dataclasses.replace(op.kernel, clobbers=(0,)))
                         if op is fcs[0] else op for op in g.ops])
    with pytest.raises(IRError, match="does not die"):
        check_plan(forced)
