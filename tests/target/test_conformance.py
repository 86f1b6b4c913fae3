"""Cost-model conformance: the simulator against the reference counts of ../shared/cost_model_conformance.

Every ELF of the pack runs on the M4 and the M7 model (inputs: the ``.input.bin`` files MANIFEST.json names).
Agreement asserted (the pack's README): instructions and stack peak exact; M4 cycles exact; M7 cycles exact on
the hand-countable micro kernels and within 0.5% on the model libraries (code placement noise).  The KWS
libraries (~18 M instructions, a few seconds each) are marked slow; the micro kernels and the other models
(both cores) run by default.
"""
from __future__ import annotations

import json

import pytest

from spz_testutil import SHARED

PACK = SHARED / "cost_model_conformance"
M7_MODEL_TOL = 0.005
SLOW = ("mlperf_kws_dscnn",)


def _cases():
    p = PACK / "MANIFEST.json"
    if not p.exists():
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason=f"conformance pack not found at {PACK}"),
                             id="no-pack")]
    out = []
    for elf, case in sorted(json.loads(p.read_text())["cases"].items()):
        for core in ("m4", "m7"):
            marks = [pytest.mark.slow] if elf.startswith(SLOW) else []
            out.append(pytest.param(elf, core, case, marks=marks, id=f"{elf[:-4]}-{core}"))
    return out


@pytest.mark.parametrize("elf,core,case", _cases())
def test_conformance(elf, core, case):
    from specializer.targets.cortex_m.sim import Simulator

    inputs = (PACK / case["input"]).read_bytes() if case["input"] else b""
    res = Simulator(PACK / elf, core=core).run(inputs)
    ref = case[core]
    assert res.warnings == []
    assert res.instructions == ref["instructions"]
    assert res.stack_peak_bytes == ref["stack_peak_bytes"]
    if core == "m4" or elf.startswith("micro_"):
        assert res.cycles == ref["cycles"], f"{elf} {core}: {res.cycles} cycles, reference {ref['cycles']}"
    else:
        err = (res.cycles - ref["cycles"]) / ref["cycles"]
        assert abs(err) <= M7_MODEL_TOL, f"{elf} m7: {res.cycles} cycles, reference {ref['cycles']} ({err:+.3%})"
