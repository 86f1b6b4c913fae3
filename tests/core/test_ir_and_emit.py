"""IR dump/verify, importer round trip, emitter determinism and warning-free builds on gcc and clang."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest

import specializer
from specializer import ops
from specializer.frontend import load_model
from specializer.ir import IRError, dump, verify
from specializer.tflite_writer import ModelBuilder


def two_fc_model(seed=0):
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    x = mb.input("x", (1, 12), "int8", 0.05, -7)
    w1 = mb.const("w1", rng.integers(-127, 128, (9, 12)).astype(np.int8), scale=0.01)
    b1 = mb.const("b1", rng.integers(-500, 500, 9).astype(np.int32), scale=0.0005)
    h = mb.tensor("h", (1, 9), "int8", 0.08, -128)
    mb.op("FULLY_CONNECTED", [x, w1, b1], [h], ops.FullyConnected(activation="RELU"))
    w2 = mb.const("w2", rng.integers(-127, 128, (5, 9)).astype(np.int8), scale=0.02)
    y = mb.tensor("y", (1, 5), "int8", 0.1, 3)
    mb.op("FULLY_CONNECTED", [h, w2, None], [y], ops.FullyConnected())
    mb.output(y)
    return mb.build()


def test_import_roundtrip_and_dump_is_deterministic():
    data = two_fc_model()
    g1, g2 = load_model(data), load_model(data)
    assert dump(g1) == dump(g2)
    verify(g1)
    assert [op.kind for op in g1.ops] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert g1.ops[0].attrs == ops.FullyConnected(activation="RELU")
    assert g1.t(g1.inputs[0]).quant.zero_point == (-7,)
    assert "%0 int8[1x12] q[s=0.0500000007 zp=-7]" in dump(g1)


def test_verify_catches_broken_graphs():
    g = load_model(two_fc_model())
    first, second = g.ops
    with pytest.raises(IRError, match="used before it is produced"):
        verify(g.with_ops([second, first]))
    with pytest.raises(IRError, match="produced twice"):
        verify(g.with_ops([first, dataclasses.replace(second, outputs=first.outputs)]))
    with pytest.raises(IRError, match="does not exist"):
        verify(g.with_ops([first, dataclasses.replace(second, inputs=(999,) + second.inputs[1:])]))
    with pytest.raises(IRError, match="attrs must be a dataclass"):
        verify(g.with_ops([dataclasses.replace(first, attrs={"activation": "RELU"}), second]))


def test_pipeline_verifies_after_every_pass_and_dump_after(tmp_path):
    dumps = []
    res = specializer.compile(two_fc_model(), name="m", out_dir=tmp_path / "o", verify_each=True,
                              dump_after="fuse_activations", dump_sink=dumps.append)
    assert len(dumps) == 1 and "clamp=(-128, 127)" in dumps[0]
    assert res.graph.memory_plan.arena_size > 0


def test_same_model_gives_byte_identical_files(tmp_path):
    a = specializer.compile(two_fc_model(), name="net", out_dir=tmp_path / "a")
    b = specializer.compile(two_fc_model(), name="net", out_dir=tmp_path / "b")
    for f in a.files:
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
    from specializer.emit import RUNTIME_FILES

    assert sorted(p.name for p in a.files) == sorted(["net.c", "net.h", "net_weights.c", *RUNTIME_FILES])


def test_header_contract(tmp_path):
    res = specializer.compile(two_fc_model(), name="kws", out_dir=tmp_path / "o")
    h = (tmp_path / "o" / "kws.h").read_text()
    for needle in ("#define KWS_ARENA_SIZE", "#define KWS_ARENA_ALIGN", "#define KWS_NUM_INPUTS 1",
                   "#define KWS_NUM_OUTPUTS 1", "#define KWS_INPUT0_SIZE 12u", "#define KWS_OUTPUT0_SIZE 5u",
                   "#define KWS_INPUT0_SCALE 0.05", "#define KWS_INPUT0_ZERO_POINT -7",
                   "int8_t *kws_input(uint8_t *arena, int index);", "int8_t *kws_output(uint8_t *arena, int index);",
                   "int kws_run(uint8_t *arena);"):
        assert needle in h, needle
    assert f"#define KWS_ARENA_SIZE {res.arena_size}u" in h
    c = (tmp_path / "o" / "kws.c").read_text() + (tmp_path / "o" / "kws_weights.c").read_text()
    assert "malloc" not in c and "static int" not in c  # no heap, no mutable globals


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_generated_c_is_warning_free(tmp_path, cc):
    if not shutil.which(cc):
        pytest.skip(f"{cc} not installed")
    specializer.compile(two_fc_model(), name="net", out_dir=tmp_path / "o")
    src = sorted(str(p) for p in (tmp_path / "o").glob("*.c"))
    for std in ("-std=c99", "-std=c11"):
        r = subprocess.run([cc, std, "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", *src,
                            f"-I{tmp_path / 'o'}"], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_two_instances_are_independent(tmp_path):
    """No global mutable state: two arenas, two results."""
    from specializer.oracle import run_tflm

    data = two_fc_model()
    res = specializer.compile(data, name="net", out_dir=tmp_path / "o")
    lib = res.host_library()
    rng = np.random.default_rng(5)
    xs = [rng.integers(-128, 128, (1, 12)).astype(np.int8) for _ in range(3)]
    for x in xs:
        assert np.array_equal(lib.run([x])[0], run_tflm(data, [x])[0])
