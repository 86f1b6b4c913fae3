"""The memory plan on the real instruction path (issue #7 part 1): every store a layer's code makes into the
arena lands in that layer's planned outputs or scratch (or the model's state), checked store by store in the
simulated Cortex-M4 (specializer/plancheck.py): real models with in-place layers (KWS), row bands (CIFAR-10),
state (the LSTM), residual blocks in row bands writing over their input (ResNet-8, --optimize ram), random forced
row-band pairs and residual blocks; a checker robbed of a layer's ranges must object."""
from __future__ import annotations

import numpy as np
import pytest

from specializer.plancheck import check_plan_in_simulator
from spz_randlayers import band_pair_model, random_inputs, residual_block_model
from spz_testutil import MODELS


@pytest.mark.parametrize("name", ["mlperf_kws_dscnn", "seed_cifar10_cnn", "tflm_mnist_lstm_int8"])
def test_real_models_store_inside_their_plan(name):
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip("shared model not found")
    violations, stores, r = check_plan_in_simulator(path, "cortex-m4")
    assert stores > 1000
    assert not violations, violations[:4]


def test_resnet8_ram_build_stores_inside_its_plan():
    """Both residual stages banded, each block's output rows over input rows no later step reads."""
    path = MODELS / "mlperf_ic_resnet8.tflite"
    if not path.exists():
        pytest.skip("shared model not found")
    violations, stores, r = check_plan_in_simulator(path, "cortex-m4", optimize="ram")
    assert stores > 100000
    assert not violations, violations[:4]


@pytest.mark.parametrize("make,seed", [(band_pair_model, 161), (residual_block_model, 162)])
def test_band_pairs_store_inside_their_plan(make, seed):
    rng = np.random.default_rng(seed)
    model, specs, _ = make(rng, 8)
    xs = random_inputs(rng, specs, n_sets=1)[0]
    violations, stores, _ = check_plan_in_simulator(model, "cortex-m4", inputs=xs, prefer={"BAND": True})
    assert stores and not violations, violations[:4]


def test_checker_objects_to_stray_stores():
    path = MODELS / "mlperf_kws_dscnn.tflite"
    if not path.exists():
        pytest.skip("shared model not found")
    violations, _, _ = check_plan_in_simulator(path, "cortex-m4", drop=2)
    assert violations and violations[0][0] == 2
