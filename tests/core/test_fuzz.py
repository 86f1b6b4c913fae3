"""Hostile input: randomly damaged models must give a clean one-line error (exit status 2, nothing written) or a
successful compile, never a traceback.

Two mutators, each seeded (a failure names its seed and case, and the damaged model is saved under tmp_path):
1. bytes: a real model (the smallest of ../shared/models, else one built by the project's writer) truncated, with
   bytes flipped, header bytes changed, 32-bit words overwritten (offsets, lengths, indices, shapes) or replaced
   by random bytes;
2. structure: a small valid model built with the project's writer, one of its parts made inconsistent before
   it is serialised (shapes zero, huge or of the wrong rank; tensor references dangling, cyclic or absent;
   quantization with NaN/zero/negative scales or mismatched zero points; constant data of the wrong size;
   strides, dilations and filter sizes of zero or absurd size; types an op does not take; graph inputs or
   outputs missing).

`make test` runs a few hundred cases; `--sweep N` runs N of each mutator.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import random

import numpy as np
import pytest

from specializer import ops as opdefs
from specializer.cli import main
from specializer.tflite_writer import ModelBuilder
from spz_testutil import MODELS


def _compile(tmp_path, data: bytes, tag: str):
    """(exit status, stderr) of `specializer compile` on `data`; asserts the error contract."""
    src = tmp_path / f"{tag}.tflite"
    src.write_bytes(data)
    out = tmp_path / f"{tag}_out"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["compile", str(src), "--target", "cortex-m4", "-o", str(out), "--name", "net"])
    except SystemExit as e:  # argparse
        rc = e.code
    except Exception as e:  # the contract is broken: keep the damaged model for the report
        raise AssertionError(f"{tag}: traceback {type(e).__name__}: {e} (model kept at {src})") from e
    text = err.getvalue().strip()
    assert rc in (0, 2), f"{tag}: exit status {rc}: {text} (model kept at {src})"
    if rc == 2:
        assert len(text.splitlines()) == 1 and text.startswith("specializer: error:"), f"{tag}: {text!r}"
        assert not out.exists() or not any(out.iterdir()), f"{tag}: files written despite the error"
    src.unlink()
    return rc, text


def _small_real_model() -> bytes:
    cands = sorted((p for p in MODELS.glob("*.tflite")), key=lambda p: p.stat().st_size) if MODELS.exists() else []
    return cands[0].read_bytes() if cands else _writer_model()


def _byte_mutant(rng: random.Random, buf: bytes) -> bytes:
    b = bytearray(buf)
    k = rng.randrange(5)
    if k == 0:
        return bytes(b[:rng.randrange(len(b))])
    if k == 1:
        for _ in range(rng.randint(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif k == 2:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(min(64, len(b)))] = rng.randrange(256)
    elif k == 3:
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(0, len(b) - 4) & ~3
            v = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, rng.randrange(1 << 32), rng.randrange(256),
                            len(b), len(b) + 4])
            b[i:i + 4] = v.to_bytes(4, "little")
    else:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 2048)))
    return bytes(b)


def test_damaged_bytes(tmp_path, sweep):
    buf = _small_real_model()
    n = sweep(300)
    ok = 0
    for case in range(n):
        rng = random.Random(1000 + case)
        rc, _ = _compile(tmp_path, _byte_mutant(rng, buf), f"bytes{case}")
        ok += rc == 0
    assert ok < n  # the mutator does damage


def _writer_builder(rng: random.Random = None) -> ModelBuilder:
    """conv 3x3 -> depthwise 3x3 -> ADD (residual) -> average pool -> fully connected -> softmax, int8."""
    r = np.random.default_rng(5)
    mb = ModelBuilder()
    x = mb.input("x", (1, 8, 8, 4), scale=0.05, zero_point=-3)
    w1 = mb.const("w1", r.integers(-127, 128, (8, 3, 3, 4), dtype=np.int8), scale=[0.01] * 8, zero_point=[0] * 8)
    b1 = mb.const("b1", r.integers(-500, 500, 8).astype(np.int32), scale=[0.0005] * 8, zero_point=[0] * 8)
    y1 = mb.tensor("y1", (1, 8, 8, 8), scale=0.04, zero_point=2)
    mb.op("CONV_2D", [x, w1, b1], [y1], opdefs.Conv2D(padding="SAME", stride_w=1, stride_h=1))
    w2 = mb.const("w2", r.integers(-127, 128, (1, 3, 3, 8), dtype=np.int8), scale=[0.02] * 8, zero_point=[0] * 8,
                  axis=3)
    b2 = mb.const("b2", r.integers(-500, 500, 8).astype(np.int32), scale=[0.0008] * 8, zero_point=[0] * 8)
    y2 = mb.tensor("y2", (1, 8, 8, 8), scale=0.03, zero_point=-1)
    mb.op("DEPTHWISE_CONV_2D", [y1, w2, b2], [y2], opdefs.DepthwiseConv2D(padding="SAME", stride_w=1, stride_h=1,
                                                                          depth_multiplier=1))
    y3 = mb.tensor("y3", (1, 8, 8, 8), scale=0.06, zero_point=0)
    mb.op("ADD", [y1, y2], [y3])
    y4 = mb.tensor("y4", (1, 1, 1, 8), scale=0.06, zero_point=0)
    mb.op("AVERAGE_POOL_2D", [y3], [y4], opdefs.Pool2D(padding="VALID", stride_w=1, stride_h=1, filter_w=8,
                                                       filter_h=8))
    w5 = mb.const("w5", r.integers(-127, 128, (4, 8), dtype=np.int8), scale=0.02, zero_point=0)
    b5 = mb.const("b5", r.integers(-100, 100, 4).astype(np.int32), scale=0.0012, zero_point=0)
    r5 = mb.const("shape", np.array([1, 8], dtype=np.int32))
    y4r = mb.tensor("y4r", (1, 8), scale=0.06, zero_point=0)
    mb.op("RESHAPE", [y4, r5], [y4r], opdefs.Reshape(new_shape=(1, 8)))
    y5 = mb.tensor("y5", (1, 4), scale=0.1, zero_point=4)
    mb.op("FULLY_CONNECTED", [y4r, w5, b5], [y5])
    y6 = mb.tensor("y6", (1, 4), scale=1 / 256, zero_point=-128)
    mb.op("SOFTMAX", [y5], [y6], opdefs.Softmax(beta=1.0))
    mb.output(y6)
    return mb


def _writer_model() -> bytes:
    return _writer_builder().build()


def _structure_mutant(rng: random.Random) -> ModelBuilder:
    mb = _writer_builder()
    nt = len(mb.tensors)
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(9)
        ti = rng.randrange(nt)
        t = mb.tensors[ti]
        oi = rng.randrange(len(mb.ops))
        o = mb.ops[oi]
        if k == 0:  # shape
            shape = list(t.shape) or [1]
            choice = rng.randrange(4)
            if choice == 0:
                shape[rng.randrange(len(shape))] = rng.choice([0, 1, 3, 1 << 20, (1 << 31) - 1])
            elif choice == 1:
                shape = shape + [rng.randint(1, 3)]
            elif choice == 2:
                shape = shape[:-1]
            else:
                shape = [rng.randint(1, 9) for _ in range(rng.randint(0, 10))]
            mb.tensors[ti] = dataclasses.replace(t, shape=tuple(shape))
        elif k == 1:  # an op's tensor reference: dangling, absent, its own output, a later op's output
            ins = list(o.inputs)
            j = rng.randrange(len(ins))
            ins[j] = rng.choice([-1, nt, nt + 100, o.outputs[0], mb.ops[-1].outputs[0], rng.randrange(nt)])
            mb.ops[oi] = dataclasses.replace(o, inputs=tuple(ins))
        elif k == 2:  # outputs
            mb.ops[oi] = dataclasses.replace(o, outputs=rng.choice([(), (nt + 3,), (o.inputs[0],),
                                                                    o.outputs + o.outputs]))
        elif k == 3:  # quantization
            if t.scale is None:
                continue
            sc = list(t.scale)
            zp = list(t.zero_point or [0] * len(sc))
            choice = rng.randrange(5)
            if choice == 0:
                sc[0] = rng.choice([float("nan"), 0.0, -0.5, float("inf"), 1e-45, 1e30])
            elif choice == 1:
                zp = zp + [0, 0]
            elif choice == 2:
                zp = []
            elif choice == 3:
                zp[0] = rng.choice([-129, 128, 1 << 20, -(1 << 31)])
            else:
                sc = sc * 3
            mb.tensors[ti] = dataclasses.replace(t, scale=tuple(sc), zero_point=tuple(zp),
                                                 axis=rng.choice([t.axis, 5, -1]) if rng.random() < 0.3 else t.axis)
        elif k == 4:  # constant data of the wrong size
            if t.data is None:
                continue
            mb.tensors[ti] = dataclasses.replace(t, data=t.data[:rng.randrange(len(t.data) + 1)] + b"\0" * rng.randrange(3))
        elif k == 5:  # attributes
            a = o.attrs
            fields = [f.name for f in dataclasses.fields(a)] if dataclasses.is_dataclass(a) else []
            ints = [f for f in fields if isinstance(getattr(a, f), int) and not isinstance(getattr(a, f), bool)]
            if not ints:
                continue
            f = rng.choice(ints)
            mb.ops[oi] = dataclasses.replace(o, attrs=dataclasses.replace(
                a, **{f: rng.choice([0, -1, 2, 7, 1000, (1 << 31) - 1])}))
        elif k == 6:  # a type the op does not take
            mb.tensors[ti] = dataclasses.replace(t, dtype=rng.choice(["int16", "int32", "uint8", "float32", "int64"]),
                                                 data=None if t.data is None else t.data)
        elif k == 7:  # graph inputs / outputs
            choice = rng.randrange(3)
            if choice == 0:
                mb.outputs = []
            elif choice == 1:
                mb.inputs = [rng.randrange(nt)]
            else:
                mb.outputs = [rng.randrange(nt), mb.outputs[0]]
        else:  # op order: a consumer before its producer
            j = rng.randrange(len(mb.ops))
            mb.ops[oi], mb.ops[j] = mb.ops[j], mb.ops[oi]
    return mb


def test_inconsistent_structure(tmp_path, sweep):
    assert _compile(tmp_path, _writer_model(), "valid")[0] == 0
    n = sweep(300)
    ok = 0
    for case in range(n):
        rng = random.Random(5000 + case)
        try:
            data = _structure_mutant(rng).build()
        except Exception:  # the writer itself refuses (e.g. data that no longer fits the shape)
            continue
        rc, _ = _compile(tmp_path, data, f"struct{case}")
        ok += rc == 0
    assert ok < n


@pytest.mark.parametrize("blob", [b"", b"TFL3", b"\x00" * 8, b"\x10\x00\x00\x00TFL3" + b"\x00" * 8,
                                  b"\xff\xff\xff\x7fTFL3" + b"\x00" * 64])
def test_degenerate_files(tmp_path, blob):
    assert _compile(tmp_path, blob, "blob")[0] == 2
