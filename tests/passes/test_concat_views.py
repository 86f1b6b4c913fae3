"""passes/concat_views: CONCATENATION inputs written by their producers straight into their slice of the output.

Random blocks: branches of one image (max and average pools of any window, RESIZE_NEAREST_NEIGHBOR of a second
image, an ADD, the image itself) joined along the channels (strided slices: only producers with `ostride` write
there) or along the height with batch 1 (contiguous slices: any producer), channel counts that do and do not
keep the slices word-aligned, the output read by a later layer or returned. Bit-exact with tflite-micro on the host
(generic and DSP kernels, ASan/UBSan) and in the simulated Cortex-M4 with every arena store checked against the
slices; the plan checks; and the views only go where the arena does not grow.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from specializer import ops
from specializer.api import lower
from specializer.ir import IRError
from specializer.oracle import compare
from specializer.passes.concat_views import candidates, without_views
from specializer.passes.liveness import slices
from specializer.passes.plan_memory import check_plan, plan_memory, tensor_ranges
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import random_inputs, sim_mismatches

BLOCKS = 6


def _block(mb, rng, tag):
    """One concatenation of 2..4 branches of x (1 x H x W x C). Returns the graph input specs."""
    h, w = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    c = int(rng.choice([4, 8, 12, 3, 5])) if rng.random() < 0.8 else int(rng.integers(1, 7))
    s, z = float(10 ** rng.uniform(-2, 0)), int(rng.integers(-128, 128))
    axis = -1 if rng.random() < 0.7 else 1
    n = 2 if axis == -1 and rng.random() < 0.25 else 1  # batches: channel slices repeat per pixel of each
    x = mb.input(f"x{tag}", (n, h, w, c), scale=s, zero_point=z)
    specs = [((n, h, w, c), z)]
    ins, width = [], 0
    for k in range(int(rng.integers(2, 5))):
        kind = str(rng.choice(["max", "avg", "resize", "add", "x"], p=[0.3, 0.25, 0.2, 0.15, 0.1]))
        if kind == "x":
            ins.append(x)
            width += c if axis == -1 else h
            continue
        if kind == "resize":
            ch = int(rng.choice([4, 8, 3])) if axis == -1 else c
            sh, sw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            src = mb.input(f"r{tag}_{k}", (n, sh, sw, ch), scale=s, zero_point=z)
            specs.append(((n, sh, sw, ch), z))
            y = mb.tensor(f"y{tag}_{k}", (n, h, w, ch), scale=s, zero_point=z)
            mb.op("RESIZE_NEAREST_NEIGHBOR", [src, mb.const(f"sz{tag}_{k}", np.array([h, w], np.int32))], [y],
                  ops.ResizeNearestNeighbor(align_corners=bool(rng.random() < 0.3), half_pixel_centers=False))
        elif kind == "add":
            ch = c
            y = mb.tensor(f"y{tag}_{k}", (n, h, w, c), scale=s, zero_point=z)
            mb.op("ADD", [x, x], [y], ops.Elementwise())
        else:
            ch = c
            f = int(rng.integers(1, 6))
            y = mb.tensor(f"y{tag}_{k}", (n, h, w, c), scale=s, zero_point=z)
            mb.op("MAX_POOL_2D" if kind == "max" else "AVERAGE_POOL_2D", [x], [y],
                  ops.Pool2D(padding="SAME", stride_h=1, stride_w=1, filter_h=f, filter_w=f))
        ins.append(y)
        width += ch if axis == -1 else h
    shape = (n, h, w, width) if axis == -1 else (1, width, w, c)
    cat = mb.tensor(f"cat{tag}", shape, scale=s, zero_point=z)
    mb.op("CONCATENATION", ins, [cat], ops.Concatenation(axis=axis))
    if rng.random() < 0.5:  # read by a later layer, not returned
        out = mb.tensor(f"o{tag}", shape, scale=s, zero_point=z)
        mb.op("MAX_POOL_2D", [cat], [out], ops.Pool2D(padding="SAME", stride_h=1, stride_w=1, filter_h=2, filter_w=2))
        cat = out
    mb.output(cat)
    return specs


def _model(seed, blocks=BLOCKS):
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    specs = []
    for b in range(blocks):
        specs += _block(mb, rng, f"{seed}_{b}")
    return mb.build(), specs, rng


def _views(g):
    return sum(len(op.views) for op in g.ops)


@pytest.mark.parametrize("seed", range(3))
def test_concat_views_host(seed, tmp_path):
    model, specs, rng = _model(400 + seed)
    views = 0
    for target in (None, "cortex-m4"):
        g, _ = lower(model, target)
        check_plan(g)
        views += _views(g)
        bad = compare(model, [random_inputs(rng, specs)[0] for _ in range(2)], tmp_path / f"t{target}",
                      target=target)
        assert not bad, f"not bit-exact with concatenation views ({target}): {bad[:4]}"
    assert views >= 4, f"only {views} inputs written in place"


def test_views_only_where_legal_and_arena_never_grows():
    model, _, _ = _model(410, blocks=10)
    g, _ = lower(model, "cortex-m4")
    plain = plan_memory(without_views(g)).memory_plan.arena_size
    assert g.memory_plan.arena_size <= plain
    sl = slices(g)
    for op in g.ops:
        for p in op.views:
            tid = op.inputs[p]
            prod = g.producer(tid)
            assert tid not in g.inputs and prod is not None
            s = sl[tid]
            if s.outer > 1 and s.chunk != s.stride:  # strided: the pools and the resize, read only here
                assert prod.kernel.ostride == g.t(op.outputs[0]).shape[-1]
                assert [o.index for o in g.ops if tid in o.inputs] == [op.index]
            lo, hi = tensor_ranges(g, tid)[0][0], tensor_ranges(g, tid)[-1][1]
            y = g.memory_plan.offsets[op.outputs[0]]
            assert y <= lo and hi <= y + g.t(op.outputs[0]).nbytes and (lo - y) % 4 == 0
    assert any(op.views for op in g.ops)


def test_a_broken_slice_offset_is_caught():
    model, _, _ = _model(411)
    g, _ = lower(model, "cortex-m4")
    tid = next(op.inputs[op.views[0]] for op in g.ops if op.views)
    mp = g.memory_plan
    bad = g.replace(memory_plan=type(mp)(**{**mp.__dict__, "offsets": {**mp.offsets, tid: mp.offsets[tid] + 4}}))
    with pytest.raises(IRError, match="different offsets"):
        check_plan(bad)


def test_no_view_through_an_alias_or_of_a_graph_input():
    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 4), scale=0.1, zero_point=0)
    p = mb.tensor("p", (1, 4, 4, 4), scale=0.1, zero_point=0)
    mb.op("MAX_POOL_2D", [x], [p], ops.Pool2D(padding="SAME", stride_h=1, stride_w=1, filter_h=3, filter_w=3))
    r = mb.tensor("r", (1, 4, 16), scale=0.1, zero_point=0)
    mb.op("RESHAPE", [p, mb.const("shape", np.array([1, 4, 16], np.int32))], [r], ops.Reshape(new_shape=(1, 4, 16)))
    x2 = mb.input("x2", (1, 4, 16), scale=0.1, zero_point=0)
    y = mb.tensor("y", (1, 4, 32), scale=0.1, zero_point=0)
    mb.op("CONCATENATION", [r, x2], [y], ops.Concatenation(axis=-1))
    mb.output(y)
    g, _ = lower(mb.build(), "cortex-m4")
    op = next(o for o in g.ops if o.kind == "CONCATENATION")
    assert not op.views and not candidates(g, op)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_concat_views_in_simulator(tmp_path):
    from specializer.plancheck import check_plan_in_simulator

    for seed, opt in ((420, "-O2"), (421, "-O3")):
        model, specs, rng = _model(seed)
        inputs = random_inputs(rng, specs, n_sets=2)
        bad, res = sim_mismatches(model, inputs, tmp_path / f"m{seed}", opt=opt)
        assert not bad, f"not bit-exact in the simulator with concatenation views: {bad[:4]}"
        assert _views(res.graph) >= 2
        violations, stores, _ = check_plan_in_simulator(model, inputs=inputs[0], opt=opt)
        assert stores and not violations, f"stores outside the plan: {violations[:4]}"


def test_all_views_no_copy(tmp_path):
    """Two pools joined along the channels: both write their slices, the concatenation emits no code."""
    import specializer

    mb = ModelBuilder()
    x = mb.input("x", (1, 5, 5, 8), scale=0.1, zero_point=-2)
    ys = []
    for k, f in enumerate((3, 5)):
        y = mb.tensor(f"p{k}", (1, 5, 5, 8), scale=0.1, zero_point=-2)
        mb.op("MAX_POOL_2D", [x], [y], ops.Pool2D(padding="SAME", filter_h=f, filter_w=f))
        ys.append(y)
    cat = mb.tensor("cat", (1, 5, 5, 16), scale=0.1, zero_point=-2)
    mb.op("CONCATENATION", ys, [cat], ops.Concatenation(axis=3))
    mb.output(cat)
    data = mb.build()
    for target in (None, "cortex-m4"):
        res = specializer.compile(data, name="net", out_dir=tmp_path / str(target), target=target)
        op = next(o for o in res.graph.ops if o.kind == "CONCATENATION")
        assert op.views == (0, 1)
        c = (tmp_path / str(target) / "net.c").read_text()
        assert "every input was written in place by its producer" in c and "net_concat_s8(" not in c
    rng = np.random.default_rng(3)
    bad = compare(data, [[rng.integers(-128, 128, (1, 5, 5, 8)).astype(np.int8)]], tmp_path / "cmp",
                  target="cortex-m4")
    assert not bad


def test_one_tensor_is_the_slice_of_one_concatenation_only(tmp_path):
    """A tensor read by two concatenations (contiguous slices may have other readers) is written in place into
    one of them at most: two outputs must never share its bytes."""
    mb = ModelBuilder()
    x = mb.input("x", (1, 4, 4, 4), scale=0.1, zero_point=0)

    def pool(name, f, kind="MAX_POOL_2D", src=x, shape=(1, 4, 4, 4)):
        y = mb.tensor(name, shape, scale=0.1, zero_point=0)
        mb.op(kind, [src], [y], ops.Pool2D(padding="SAME", filter_h=f, filter_w=f))
        return y

    t, a, b = pool("t", 3), pool("a", 3, "AVERAGE_POOL_2D"), pool("b", 2)
    y1, y2 = (mb.tensor(n, (1, 8, 4, 4), scale=0.1, zero_point=0) for n in ("y1", "y2"))
    mb.op("CONCATENATION", [t, a], [y1], ops.Concatenation(axis=1))
    mb.op("CONCATENATION", [b, t], [y2], ops.Concatenation(axis=1))
    mb.output(pool("o1", 2, src=y1, shape=(1, 8, 4, 4)))
    mb.output(pool("o2", 2, src=y2, shape=(1, 8, 4, 4)))
    data = mb.build()
    rng = np.random.default_rng(9)
    for target in (None, "cortex-m4"):
        g, _ = lower(data, target)
        check_plan(g)
        viewed = [o.inputs[p] for o in g.ops for p in o.views]
        assert len(viewed) == len(set(viewed)) and viewed
        bad = compare(data, [[rng.integers(-128, 128, (1, 4, 4, 4)).astype(np.int8)]], tmp_path / str(target),
                      target=target)
        assert not bad, f"not bit-exact: {bad[:3]}"
