"""Helpers shared by the tests: the shared models folder, reference pairs, bit-exactness assertion."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPZ_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"


def manifest() -> dict:
    p = MODELS / "MANIFEST.json"
    if not p.exists():
        return {"models": []}
    return json.loads(p.read_text())


def model_names() -> list[str]:
    return [m["file"][:-len(".tflite")] for m in manifest()["models"]]


def model_path(name: str) -> Path:
    return MODELS / f"{name}.tflite"


def reference(name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    ref = np.load(MODELS / f"{name}.ref.npz")
    ins = [ref[f"input_{i}"] for i in range(len([k for k in ref.files if k.startswith("input_")]))]
    outs = [ref[f"output_{i}"] for i in range(len([k for k in ref.files if k.startswith("output_")]))]
    return ins, outs


requires_models = pytest.mark.skipif(not (MODELS / "MANIFEST.json").exists(),
                                     reason=f"shared models not found at {MODELS}")


def assert_bitexact(model_bytes: bytes, inputs_list, tmp_path: Path, sanitize: bool = True, name: str = "net",
                    layers=None, target=None):
    """Compile `model_bytes`, run every input set on the host (ASan/UBSan) and on TFLM; fail on any difference.

    `layers`: optional descriptions of the model's layers (output k = layer k), listed in the failure message.
    """
    from specializer.oracle import compare

    bad = compare(model_bytes, inputs_list, tmp_path / "out", name=name, sanitize=sanitize, target=target)
    msg = "not bit-exact with TFLM: " + "; ".join(str(b) for b in bad[:5])
    if layers:
        msg += "\nlayers (output k = layer k):\n  " + "\n  ".join(layers)
    assert not bad, msg


def broadcast_shapes(rng, max_rank: int = 6, p_equal: float = 0.3) -> tuple:
    """Two shapes that broadcast (numpy rules): rank 4 or (40%) 1..max_rank, equal (p_equal), else dimensions set
    to 1 on either side and sometimes a lower-rank operand; the two sides swapped half the time."""
    rank = int(rng.integers(1, max_rank + 1)) if rng.random() < 0.4 else 4
    out = [int(rng.integers(1, 6)) for _ in range(rank)]
    if rng.random() < p_equal:
        return tuple(out), tuple(out)
    a, b = list(out), list(out)
    for d in range(rank):
        r = rng.random()
        if r < 0.3:
            a[d] = 1
        elif r < 0.6:
            b[d] = 1
    if rng.random() < 0.3:  # lower-rank operand
        b = b[int(rng.integers(0, rank)):] or [1]
    if rng.random() < 0.5:
        a, b = b, a
    return tuple(a), tuple(b)
