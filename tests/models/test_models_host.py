"""Every model in ../shared/models, generic and specialized for the Cortex-M4: compiled, built for the host with
ASan/UBSan, bit-exact with its reference
pair (.ref.npz) and with the tflite-micro interpreter on 20 further random inputs (half of them drawn from a
narrow range around the input zero point, so that classifiers do not saturate)."""
from __future__ import annotations

import numpy as np
import pytest

import specializer
from specializer.oracle import diff_outputs, random_inputs, run_tflm
from spz_testutil import model_names, model_path, reference, requires_models

N_RANDOM = 20


@requires_models
@pytest.mark.parametrize("target", [None, "cortex-m4"])
@pytest.mark.parametrize("name", model_names())
def test_model_bitexact_on_host(name, target, tmp_path):
    """target None: the generic kernels; cortex-m4: the specialized ones with the portable twins of the intrinsics."""
    path = model_path(name)
    res = specializer.compile(path, name="net", out_dir=tmp_path / "out", verify_each=True, target=target)
    lib = res.host_library(sanitize=True)
    ins, outs = reference(name)
    got = lib.run(ins)
    bad = diff_outputs(outs, got)
    assert not bad, f"{name}: reference pair differs: {bad[0]}"
    rng = np.random.default_rng(1234)
    data = path.read_bytes()
    for case in range(N_RANDOM):
        xs = random_inputs(res, rng, narrow=case % 2 == 1)
        bad = diff_outputs(run_tflm(data, xs), lib.run(xs), case)
        assert not bad, f"{name}: {bad[0]}"
