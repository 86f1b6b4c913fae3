"""Int8 elementwise ops tabulated by TFLite Micro itself: ABS, NEG, LEAKY_RELU, ELU, EXP, RSQRT.

How it works
1. Each of these ops maps one int8 input to one int8 output with per-tensor constants only, so the whole op is
   a 256-entry table. Instead of a Python twin of each TFLM kernel's fixed-point code, the table is *measured*:
   a one-op model (the layer's own op, options and quantization, on a 256-element tensor holding every input
   byte) runs once in the oracle (the `tflite-micro` package, TFLM's reference kernels), and its output is the
   table. It is exact by construction, for any TFLM arithmetic, and cached per (op, options, quantization).
2. Where TFLM refuses the layer (its Prepare or Eval fails, e.g. RSQRT of negative values, EXP in int8 on a
   TFLM without it), the compiler refuses it too, with TFLM's reason: a table cannot stand for an op that
   TFLM would not run.
3. The tables feed the generic `lut_s8` kernel (one load per element, in place); `tflite-micro` is needed at
   compile time only for models that contain these ops.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from typing import Any

import numpy as np

MEASURED_OPS = ("ABS", "NEG", "LEAKY_RELU", "ELU", "EXP", "RSQRT")


def _measure(kind: str, build, xs: np.ndarray) -> np.ndarray:
    """Run the one-op model `build(ModelBuilder)` writes on the input `xs` in the oracle; TFLM's output, or a
    ValueError with TFLM's own reason (its first line on the C stderr, captured) when it refuses the layer."""
    from .tflite_writer import ModelBuilder

    mb = ModelBuilder()
    build(mb)
    model = mb.build()
    try:
        from .oracle import run_tflm
    except ImportError as e:  # pragma: no cover - the package is a dependency
        raise ValueError(f"int8 {kind} is tabulated by tflite-micro at compile time, which is not installed ({e})")
    with _captured_stderr() as said:  # TFLM reports on the C stderr: keep it off the user's terminal
        try:
            out = run_tflm(model, [xs])[0]
            failed = None
        except Exception as e:  # TFLM's Prepare/Invoke refused the layer
            failed = e
    if failed is not None:
        lines = [ln.strip() for ln in said() if ln.strip()]
        reason = lines[0] if lines else " ".join(str(failed).split()) or type(failed).__name__
        raise ValueError(f"TFLite Micro does not run this int8 {kind}: {reason[:200]}")
    return np.asarray(out, dtype=np.int8)


ALL_BYTES = np.arange(256, dtype=np.uint8).view(np.int8)  # table index i holds input byte i read as uint8


@functools.lru_cache(maxsize=512)
def measured_table(kind: str, attrs: Any, in_scale: float, in_zp: int, out_scale: float, out_zp: int
                   ) -> tuple[int, ...]:
    """TFLM's int8 output for every input byte, indexed by the byte read as uint8. Raises ValueError with TFLM's
    reason when TFLM does not run the layer."""
    def build(mb):
        x = mb.input("x", (256,), scale=in_scale, zero_point=in_zp)
        y = mb.tensor("y", (256,), scale=out_scale, zero_point=out_zp)
        mb.op(kind, [x], [y], attrs)
        mb.output(y)

    return tuple(int(v) for v in _measure(kind, build, ALL_BYTES).reshape(-1))


@functools.lru_cache(maxsize=64)
def measured_prelu_table(alpha: tuple, alpha_scale: float, alpha_zp: int, in_scale: float, in_zp: int,
                         out_scale: float, out_zp: int) -> tuple[int, ...]:
    """PRELU with a constant alpha per channel (the last dimension): C tables of 256 entries, table c holding
    TFLM's output for every input byte in channel c (one run of a (256, C) input against the (C,) alpha)."""
    c = len(alpha)

    def build(mb):
        x = mb.input("x", (256, c), scale=in_scale, zero_point=in_zp)
        a = mb.const("alpha", np.asarray(alpha, dtype=np.int8), scale=alpha_scale, zero_point=alpha_zp)
        y = mb.tensor("y", (256, c), scale=out_scale, zero_point=out_zp)
        mb.op("PRELU", [x, a], [y])
        mb.output(y)

    out = _measure("PRELU", build, np.repeat(ALL_BYTES[:, None], c, axis=1))
    return tuple(int(v) for v in out.T.reshape(-1))


@contextlib.contextmanager
def _captured_stderr():
    """File descriptor 2 into a temporary file for the block; yields a function returning its lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as f:
        os.dup2(f.fileno(), 2)
        text: list = []
        try:
            yield lambda: text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            text.extend(f.read().decode("utf-8", "replace").splitlines())
