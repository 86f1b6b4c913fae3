"""Variant tuning in the simulator (specializer/tune.py, `compile --tune`): every candidate variant of every
specialized layer is timed, one build per candidate rank; the measurements are the layer's cycles (a build forcing
that variant with other variants around it agrees within 1%: the arena placement moves a little), cached on disk,
and the tuned compile ranks variants by them and stays bit-exact with tflite-micro in the simulator."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import specializer
from specializer import tune
from specializer.api import lower
from specializer.errors import SpecializerError
from specializer.passes.choose_variants import params_key
from specializer.tflite_writer import ModelBuilder
from spz_randlayers import add_conv_layer, add_fc_layer, random_inputs, sim_mismatches

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")


def _model():
    """A 3x3 convolution, a depthwise convolution and a fully connected layer: conv, depthwise and FC variants."""
    rng = np.random.default_rng(141)
    mb = ModelBuilder()
    specs = []
    for i, (dw, geom) in enumerate(((False, (9, 9, 3, 3, 1, 1, 1, 1, "SAME")), (True, (8, 8, 3, 3, 1, 1, 1, 1, "SAME")))):
        shape, zp, _ = add_conv_layer(mb, rng, str(i), dw, force={"geom": geom, "groups": 1, "mult": 1},
                                      channels=(8,))
        specs.append((shape, zp))
    shape, zp, _ = add_fc_layer(mb, rng, "f")
    specs.append((shape, zp))
    return mb.build(), specs, rng


def test_tuning_measures_every_candidate_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv(tune.CACHE_ENV, str(tmp_path / "cache"))
    model, specs, rng = _model()
    from specializer.targets.cortex_m.cores import get_core

    cands = tune.candidates(model, get_core("cortex-m4"))
    assert cands and all(len(cs) > 1 for _, cs in cands)
    report: dict = {}
    measured = tune.measure_variants(model, "cortex-m4", opt="-O2", jobs=1, report=report)
    assert report["builds"] == max(len(cs) for _, cs in cands) and not report["hit"]
    for idx, cs in cands:  # every candidate timed
        assert set(measured[str(idx)]) == {params_key(c.params) for c in cs}
    again: dict = {}
    assert tune.measure_variants(model, "cortex-m4", opt="-O2", jobs=1, report=again) == measured
    assert again["hit"] and again["builds"] == 0

    # a build forcing one layer's slowest candidate (the others at their first) times it as the tuning did
    idx, cs = cands[0]
    slow = max(cs, key=lambda c: measured[str(idx)][params_key(c.params)])
    force = {i: dict(c[0].params) for i, c in cands}
    force[idx] = dict(slow.params)
    want = measured[str(idx)][params_key(slow.params)]
    assert tune._measure_build((model, "cortex-m4", force, "-O2"))[idx] == pytest.approx(want, rel=0.01)

    # choose_variants ranks by the measurements: make every layer's last candidate the fastest by far
    fake = {str(idx): {params_key(c.params): (1.0 if k == len(cs) - 1 else 1e9) for k, c in enumerate(cs)}
            for idx, cs in cands}
    g, _ = lower(model, "cortex-m4", flash_budget=None, prefer={"@cycles": fake})
    for idx, cs in cands:
        assert dict(g.op_by_index(idx).kernel.variant) == dict(cs[-1].params)
    # the tuned compile (cache hit) is bit-exact
    g, _ = lower(model, "cortex-m4", tune=True, tune_opt="-O2")
    assert {op.index for op in g.ops if op.kernel is not None and op.kernel.variant} >= {i for i, _ in cands}
    bad, _ = sim_mismatches(model, random_inputs(rng, specs, n_sets=2), tmp_path / "sim", opt="-O2",
                            flash_budget=None, prefer=tune.tuned_prefer(None, measured))
    assert not bad, bad[:4]


def test_tuning_needs_a_core(tmp_path):
    model, _, _ = _model()
    with pytest.raises(SpecializerError, match="--tune needs a --target"):
        specializer.compile(model, out_dir=tmp_path / "o", tune=True)
