"""Every user mistake gives a one-line error, a non-zero exit and no partial output."""
from __future__ import annotations

import numpy as np
import pytest

from specializer import ops
from specializer.cli import main
from specializer.errors import (InvalidNameError, ModelFormatError, OutputError, ShapeError, TargetError,
                                UnsupportedOpError, UnsupportedTypeError)
from specializer.tflite_writer import ModelBuilder
import specializer


def fc_model(in_dtype="int8", n_in=16, n_out=4, w_depth=None):
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    if in_dtype == "float32":
        x = mb.input("x", (1, n_in), "float32")
    else:
        x = mb.input("x", (1, n_in), in_dtype, 0.1, 0)
    w = mb.const("w", rng.integers(-127, 128, (n_out, w_depth or n_in)).astype(np.int8), scale=0.02)
    y = mb.tensor("y", (1, n_out), "int8", 0.2, 0)
    mb.op("FULLY_CONNECTED", [x, w, None], [y], ops.FullyConnected())
    mb.output(y)
    return mb.build()


def run_cli(capsys, *argv):
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_one_line_error(rc, err, *fragments):
    assert rc == 2
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("specializer: error: ")
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_unsupported_op_names_op_index_and_supported_list(tmp_path, capsys):
    mb = ModelBuilder()
    x = mb.input("x", (1, 8), "int8", 0.1, 0)
    y = mb.tensor("y", (1, 8), "int8", 0.1, 0)
    z = mb.tensor("z", (1, 8), "int8", 0.1, 0)
    mb.op("RELU", [x], [y])
    mb.raw_op("CUMSUM", [y], [z])
    mb.output(z)
    model = tmp_path / "m.tflite"
    model.write_bytes(mb.build())
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, "compile", str(model), "-o", str(out))
    assert_one_line_error(rc, err, "op #1 CUMSUM is not supported", "supported ops:", "CONV_2D")
    assert not out.exists()
    with pytest.raises(UnsupportedOpError):
        specializer.compile(model, out_dir=None)


@pytest.mark.parametrize("cut", [0, 7, 40, 200, -16])
def test_truncated_or_malformed_flatbuffer(tmp_path, capsys, cut):
    data = fc_model()
    bad = data[:cut] if cut >= 0 else data[:cut]
    model = tmp_path / "m.tflite"
    model.write_bytes(bad)
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, "compile", str(model), "-o", str(out))
    # a cut that happens to keep every byte the parser needs would still have to compile correctly; none here do
    assert_one_line_error(rc, err, str(model))
    assert not out.exists()


def test_garbage_with_valid_identifier(tmp_path):
    data = bytearray(fc_model())
    rng = np.random.default_rng(3)
    for i in rng.integers(8, len(data), 200):
        data[int(i)] = int(rng.integers(0, 256))
    with pytest.raises((ModelFormatError, UnsupportedOpError, UnsupportedTypeError, ShapeError)):
        specializer.compile(bytes(data), out_dir=None)


def test_not_a_tflite_file(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    model.write_text("hello, this is not a model at all")
    rc, _, err = run_cli(capsys, "compile", str(model), "-o", str(tmp_path / "o"))
    assert_one_line_error(rc, err, "not a TFLite model")


def test_missing_file(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "compile", str(tmp_path / "nope.tflite"))
    assert_one_line_error(rc, err, "no such file")


def test_float_activation_rejected(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    model.write_bytes(fc_model("float32"))
    rc, _, err = run_cli(capsys, "compile", str(model), "-o", str(tmp_path / "o"))
    assert_one_line_error(rc, err, "FULLY_CONNECTED", "is float32", "only int8")
    assert not (tmp_path / "o").exists()


def test_int16_activation_rejected(tmp_path):
    """int16x8 covers some ops (QUANTIZE, DEQUANTIZE, FULLY_CONNECTED, ADD, SUB, MUL, convolutions, ...); an int16
    MAXIMUM is refused."""
    mb = ModelBuilder()
    a = mb.input("a", (1, 8), "int16", 0.1, 0)
    b = mb.input("b", (1, 8), "int16", 0.1, 0)
    y = mb.tensor("y", (1, 8), "int16", 0.2, 0)
    mb.op("MAXIMUM", [a, b], [y])
    mb.output(y)
    with pytest.raises(UnsupportedTypeError, match="MAXIMUM.*int16"):
        specializer.compile(mb.build(), out_dir=None)


def test_shape_a_kernel_cannot_take(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    model.write_bytes(fc_model(n_in=10, w_depth=4))  # 10 inputs, weights of depth 4: no kernel can take it
    rc, _, err = run_cli(capsys, "compile", str(model), "-o", str(tmp_path / "o"))
    assert_one_line_error(rc, err, "op #0 FULLY_CONNECTED", "no kernel can take this layer")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["1net", "my-net", "int", "", "a b", "spz_x", "ünï"])
def test_invalid_name(tmp_path, capsys, name):
    model = tmp_path / "m.tflite"
    model.write_bytes(fc_model())
    rc, _, err = run_cli(capsys, "compile", str(model), "--name", name, "-o", str(tmp_path / "o"))
    assert_one_line_error(rc, err, "invalid --name")
    assert not (tmp_path / "o").exists()
    with pytest.raises(InvalidNameError):
        specializer.compile(model, name=name, out_dir=None)


def test_unwritable_output_directory(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    model.write_bytes(fc_model())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = run_cli(capsys, "compile", str(model), "-o", str(blocker / "sub"))
    assert_one_line_error(rc, err, "cannot write output directory")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.access(ro, os.W_OK):  # running as root: permissions do not stop us
            pytest.skip("root can write a read-only directory")
        with pytest.raises(OutputError):
            specializer.compile(model, out_dir=ro / "o")
    finally:
        ro.chmod(0o700)


def test_unknown_target(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    model.write_bytes(fc_model())
    rc, _, err = run_cli(capsys, "compile", str(model), "--target", "cortex-m99", "-o", str(tmp_path / "o"))
    assert_one_line_error(rc, err, "cortex-m99", "cortex-m4")
    with pytest.raises(TargetError):
        specializer.compile(model, target="pdp11", out_dir=None)


def test_failed_compile_leaves_existing_directory_untouched(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UnsupportedTypeError):
        specializer.compile(fc_model("float32"), out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
