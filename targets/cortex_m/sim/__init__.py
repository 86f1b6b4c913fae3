"""Cycle-counting simulator for Cortex-M benchmark ELFs (package ``specializer.targets.cortex_m.sim``).

How it works:
1. ``isa``        -- capstone-based Thumb instruction classifier shared by all cost models.
2. ``cost_m4``/``cost_m3``/``cost_m0``/``cost_m7`` -- one cost model per core family (COST_MODEL.md, TRMs).
3. ``simulator``  -- ``Simulator(elf, core).run(inputs) -> SimResult`` on unicorn.
4. ``__main__``   -- CLI: ``python -m specializer.targets.cortex_m.sim run app.elf --input in.bin --core m4 --json``.
"""
from .simulator import COST_MODELS, LayerRecord, SimError, SimResult, Simulator

__all__ = ["Simulator", "SimResult", "SimError", "LayerRecord", "COST_MODELS"]
