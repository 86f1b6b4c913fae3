"""The oracle: TensorFlow Lite Micro's reference kernels (pip `tflite-micro`), and bit-exactness checks.

How it works
1. `run_tflm(model, inputs)` runs one inference on a *fresh* interpreter (stateful ops such as LSTM keep state
   between invokes, and the reference pairs were made on fresh interpreters).
2. `compare(model, inputs_list, out_dir)` compiles the model with specializer, builds the host library (with
   ASan/UBSan when `sanitize`), runs every input through both, and returns a report of any difference.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np


def run_tflm(model: Union[bytes, str, os.PathLike], inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    # the interpreter's default arena (10x the model size) is too small for activation-heavy test models
    it = runtime.Interpreter.from_bytes(bytes(data), arena_size=max(len(data) * 10, 4 << 20))
    for i, x in enumerate(inputs):
        it.set_input(np.asarray(x), i)
    it.invoke()
    import tflite

    n_out = tflite.Model.GetRootAsModel(bytes(data), 0).Subgraphs(0).OutputsLength()
    return [np.array(it.get_output(i)) for i in range(n_out)]


def run_tflm_stream(model: Union[bytes, str, os.PathLike], frames: Sequence[Sequence[np.ndarray]]
                    ) -> list[list[np.ndarray]]:
    """Every frame through one interpreter: variable tensors (LSTM state) carry over between invokes."""
    from tflite_micro.python.tflite_micro import runtime
    import tflite

    data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    it = runtime.Interpreter.from_bytes(bytes(data), arena_size=max(len(data) * 10, 4 << 20))
    n_out = tflite.Model.GetRootAsModel(bytes(data), 0).Subgraphs(0).OutputsLength()
    out = []
    for inputs in frames:
        for i, x in enumerate(inputs):
            it.set_input(np.asarray(x), i)
        it.invoke()
        out.append([np.array(it.get_output(i)) for i in range(n_out)])
    return out


def random_inputs(result, rng: np.random.Generator, narrow: bool = False) -> list[np.ndarray]:
    """Random inputs for a CompileResult's inputs: int8 uniform over the whole range, or (narrow) within 24 of the
    input zero point so that classifiers do not saturate (int16: the same, x256); float32 inputs uniform in +-60
    (narrow: +-4)."""
    xs = []
    for io in result.inputs:
        if io.dtype == "float32":
            lim = 4.0 if narrow else 60.0
            xs.append(rng.uniform(-lim, lim, size=io.shape).astype(np.float32))
        elif io.dtype == "int16":  # int16x8 inputs: the whole range, or (narrow) within 24 * 256 of the zp
            zp = io.zero_point or 0
            lo, hi = (max(-32768, zp - 6144), min(32767, zp + 6144)) if narrow else (-32768, 32767)
            xs.append(rng.integers(lo, hi + 1, size=io.shape).astype(np.int16))
        else:
            zp = io.zero_point or 0
            lo, hi = (max(-128, zp - 24), min(127, zp + 24)) if narrow else (-128, 127)
            xs.append(rng.integers(lo, hi + 1, size=io.shape).astype(np.int8))
    return xs


@dataclass
class Mismatch:
    case: int
    output: int
    num_diff: int
    max_abs_diff: float
    first_index: tuple

    def __str__(self) -> str:
        return (f"input #{self.case}, output {self.output}: {self.num_diff} values differ "
                f"(max |diff| {self.max_abs_diff}, first at {self.first_index})")


def diff_outputs(ref: Sequence[np.ndarray], got: Sequence[np.ndarray], case: int = 0) -> list[Mismatch]:
    bad = []
    for k, (r, g) in enumerate(zip(ref, got)):
        r = np.asarray(r)
        g = np.asarray(g).reshape(r.shape)
        if r.dtype != g.dtype or not np.array_equal(r, g):
            d = np.abs(r.astype(np.float64) - g.astype(np.float64))
            idx = tuple(int(v) for v in np.argwhere(d > 0)[0]) if (d > 0).any() else ()
            bad.append(Mismatch(case, k, int((d > 0).sum()), float(d.max()), idx))
    return bad


def compare(model: Union[bytes, str, os.PathLike], inputs_list: Sequence[Sequence[np.ndarray]], out_dir: Path,
            name: str = "net", sanitize: bool = True, target: Optional[str] = None, prefer=None,
            share_all: bool = False) -> list[Mismatch]:
    """Compile, run on the host and compare with TFLM for every input set. Returns the mismatches."""
    import specializer

    res = specializer.compile(model, name=name, out_dir=out_dir, target=target, verify_each=True, prefer=prefer,
                              share_all=share_all)
    lib = res.host_library(sanitize=sanitize)
    bad = []
    for case, xs in enumerate(inputs_list):
        ref = run_tflm(model, xs)
        got = lib.run(xs)
        bad += diff_outputs(ref, got, case)
    return bad
