"""SLICE, PACK, UNPACK, SPACE_TO_DEPTH, DEPTH_TO_SPACE, GATHER (constant indices), SPACE_TO_BATCH_ND (unpadded),
BATCH_TO_SPACE_ND (int8): random shapes, axes (negative too), begins and
sizes (-1 = to the end), block sizes, against tflite-micro on the host under ASan (generic and Cortex-M4 builds);
inconsistent layers are refused in one line."""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from specializer.cli import main
from specializer.oracle import compare
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import random_inputs


def _add(mb, rng, i, kind):
    q = dict(scale=float(10 ** rng.uniform(-2, 0)), zero_point=int(rng.integers(-128, 128)))
    specs = []
    if kind == "SLICE":
        shape = tuple(int(v) for v in rng.integers(1, 7, size=int(rng.integers(1, 5))))
        begin = [int(rng.integers(0, n)) for n in shape]
        size = [int(rng.integers(1, n - b + 1)) if rng.random() < 0.7 else -1 for n, b in zip(shape, begin)]
        out = tuple(n - b if s == -1 else s for n, b, s in zip(shape, begin, size))
        x = mb.input(f"x{i}", shape, **q)
        y = mb.tensor(f"y{i}", out, **q)
        mb.op("SLICE", [x, mb.const(f"b{i}", np.array(begin, np.int32)), mb.const(f"s{i}", np.array(size, np.int32))],
              [y])
        mb.output(y)
        specs.append((shape, q["zero_point"]))
        return specs, f"SLICE {shape} begin {begin} size {size}"
    if kind in ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE"):
        b = int(rng.integers(1, 4))
        h, w, c = (int(v) for v in rng.integers(1, 5, size=3))
        n = int(rng.integers(1, 3))
        if kind == "SPACE_TO_DEPTH":
            shape, out = (n, h * b, w * b, c), (n, h, w, c * b * b)
        else:
            shape, out = (n, h, w, c * b * b), (n, h * b, w * b, c)
        x = mb.input(f"x{i}", shape, **q)
        y = mb.tensor(f"y{i}", out, **q)
        mb.op(kind, [x], [y], ops.BlockSize(block_size=b))
        mb.output(y)
        specs.append((shape, q["zero_point"]))
        return specs, f"{kind} {shape} b={b}"
    if kind in ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"):
        bh, bw = (int(v) for v in rng.integers(1, 4, size=2))
        c = int(rng.integers(1, 5))
        if kind == "SPACE_TO_BATCH_ND":
            n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 7)), int(rng.integers(1, 7))
            h, w = h * bh, w * bw  # unpadded: TFLM's int8 padding value is uninitialized (refused, see below)
            t = l_ = b_ = r = 0
            shape = (n, h, w, c)
            out = (n * bh * bw, (h + t + b_) // bh, (w + l_ + r) // bw, c)
        else:
            n, gh, gw = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
            t, b_ = int(rng.integers(0, gh * bh)), 0
            l_, r = 0, int(rng.integers(0, gw * bw))
            shape = (n * bh * bw, gh, gw, c)
            out = (n, gh * bh - t - b_, gw * bw - l_ - r, c)
        x = mb.input(f"x{i}", shape, **q)
        y = mb.tensor(f"y{i}", out, **q)
        mb.op(kind, [x, mb.const(f"bs{i}", np.array([bh, bw], np.int32)),
                     mb.const(f"p{i}", np.array([[t, b_], [l_, r]], np.int32))], [y])
        mb.output(y)
        return [(shape, q["zero_point"])], f"{kind} {shape} block {bh}x{bw} pads {[t, b_, l_, r]} -> {out}"
    if kind == "GATHER":
        shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 4))))
        rank = len(shape)
        ax = int(rng.integers(-rank, rank))
        a = ax + rank if ax < 0 else ax
        ishape = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(1, 3))))
        idx = rng.integers(0, shape[a], size=ishape).astype(np.int32)
        x = mb.input(f"x{i}", shape, **q)
        y = mb.tensor(f"y{i}", shape[:a] + ishape + shape[a + 1:], **q)
        mb.op("GATHER", [x, mb.const(f"i{i}", idx)], [y], ops.Gather(axis=ax))
        mb.output(y)
        return [(shape, q["zero_point"])], f"GATHER {shape} axis {ax} idx {idx.tolist()}"
    shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    k = int(rng.integers(1, 5))
    if kind == "PACK":
        rank = len(shape) + 1
        ax = int(rng.integers(-rank, rank))
        a = ax + rank if ax < 0 else ax
        out = shape[:a] + (k,) + shape[a:]
        xs = [mb.input(f"x{i}_{j}", shape, **q) for j in range(k)]
        y = mb.tensor(f"y{i}", out, **q)
        mb.op("PACK", xs, [y], ops.Pack(values_count=k, axis=ax))
        mb.output(y)
        return [(shape, q["zero_point"])] * k, f"PACK {k} x {shape} axis {ax}"
    rank = len(shape)
    ax = int(rng.integers(-rank, rank))
    a = ax + rank if ax < 0 else ax
    x = mb.input(f"x{i}", shape, **q)
    outs = [mb.tensor(f"y{i}_{j}", shape[:a] + shape[a + 1:], **q) for j in range(shape[a])]
    mb.op("UNPACK", [x], outs, ops.Unpack(num=shape[a], axis=ax))
    for o in outs:
        mb.output(o)
    return [(shape, q["zero_point"])], f"UNPACK {shape} axis {ax}"


KINDS = ("SLICE", "PACK", "UNPACK", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "GATHER", "SPACE_TO_BATCH_ND",
         "BATCH_TO_SPACE_ND")


@pytest.mark.parametrize("target,seed", [(None, 121), ("cortex-m4", 122)])
def test_random_layers(tmp_path, target, seed, sweep):
    rng = np.random.default_rng(seed)
    n = sweep(48)
    for m in range(0, n, 10):
        mb = ModelBuilder()
        specs, descs, owner = [], [], []
        for i in range(min(10, n - m)):
            sp, d = _add(mb, rng, i, KINDS[(m + i) % len(KINDS)])
            specs += sp
            descs.append(d)
        model = mb.build()
        bad = compare(model, random_inputs(rng, specs, n_sets=2), tmp_path / f"m{m}", target=target)
        assert not bad, "not bit-exact: " + "; ".join(map(str, bad[:5])) + " | " + "; ".join(descs)


def test_inconsistent_block_size_is_refused(tmp_path, capsys):
    mb = ModelBuilder()
    x = mb.input("x", (1, 3, 4, 2), scale=0.1, zero_point=0)
    y = mb.tensor("y", (1, 1, 2, 18), scale=0.1, zero_point=0)
    mb.op("SPACE_TO_DEPTH", [x], [y], ops.BlockSize(block_size=3))
    mb.output(y)
    src = tmp_path / "m.tflite"
    src.write_bytes(mb.build())
    assert main(["compile", str(src), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "multiples of the block size" in err, err


def test_padded_space_to_batch_is_refused(tmp_path, capsys):
    """TFLite Micro's int8 SPACE_TO_BATCH_ND pads with a parameter it never initializes: refused, with why."""
    mb = ModelBuilder()
    x = mb.input("x", (1, 2, 4, 1), scale=0.1, zero_point=5)
    y = mb.tensor("y", (4, 3, 2, 1), scale=0.1, zero_point=5)
    mb.op("SPACE_TO_BATCH_ND", [x, mb.const("bs", np.array([2, 2], np.int32)),
                                mb.const("p", np.array([[1, 3], [0, 0]], np.int32))], [y])
    mb.output(y)
    src = tmp_path / "m.tflite"
    src.write_bytes(mb.build())
    assert main(["compile", str(src), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "uninitialized" in err, err


def test_random_layers_in_simulator(tmp_path):
    from spz_randlayers import layers_model, sim_mismatches

    rng = np.random.default_rng(123)
    model, specs, descs = layers_model(rng, 2 * len(KINDS), lambda mb, r, i: _add(mb, r, i, KINDS[i % len(KINDS)]))
    bad, _ = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "m", opt="-O2")
    assert not bad, "; ".join(map(str, bad[:5])) + " | " + "; ".join(descs)
