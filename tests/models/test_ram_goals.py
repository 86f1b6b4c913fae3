"""Issue #7's RAM goals, held by the default build's memory plan (no simulation: the arena is decided at compile
time). The figures are this tree's plans; RAM in the simulator adds other static data (48 B) and the stack peak
(`benchmarks/ram_table.py`), which the margins below leave room for."""
from __future__ import annotations

import pytest

from specializer.api import lower
from spz_testutil import MODELS, model_path, requires_models

# model -> (arena the default M4 build plans, the RAM goal in bytes: 0.35x or 0.5x of TFLM + CMSIS-NN's RAM)
ARENAS = {"mlperf_ic_resnet8": (19_800, 20_181), "mlperf_ad_fc_autoencoder": (768, 1_429),
          "mlperf_kws_dscnn": (8_280, 8_919), "mlperf_vww_mobilenetv1_025": (29_484, 36_180),
          "seed_cifar10_cnn": (17_512, 22_474)}


@requires_models
@pytest.mark.parametrize("name", sorted(ARENAS))
def test_default_build_plans_within_the_ram_goal(name):
    if not (MODELS / f"{name}.tflite").exists():
        pytest.skip(f"{name} not in ../shared/models")
    g, _ = lower(model_path(name), "cortex-m4")
    arena, goal = ARENAS[name]
    assert g.memory_plan.arena_size == arena
    assert arena + 48 + 300 <= goal  # other static data and a stack peak of up to 300 B (measured: 148-280 B, run_models.py)
