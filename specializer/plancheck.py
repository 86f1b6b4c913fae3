"""The memory plan, checked on the real instruction path: every store a layer's code makes into the arena must
land in what the plan gave that layer (issue #7, part 1).

How it works
1. From the planned graph: per layer (its profile mark, the op index) the byte ranges it may write: its output
   tensors (aliases share their group's bytes; in-place and chasing outputs lie over their inputs by design),
   its scratch, and the model's state (variable tensors) for the layers that update it; before the first mark
   (`<name>_reset`) only the state.
2. The simulator calls back on every store into the arena (a unicorn memory hook on the arena's range only), and
   the layer whose mark came last is charged with it. A store outside the layer's ranges is a violation:
   (layer, arena offset, size), the first few kept.
3. `check_plan_in_simulator(model, core)` builds the bench ELF as `specializer bench` does, runs one inference
   with the checker and returns (violations, stores checked, SimResult).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

END = 0xFFFFFFFF


def allowed_ranges(g) -> dict:
    """op index (and None: before the first layer) -> [(lo, hi)] arena byte ranges the layer may write."""
    from .passes.liveness import concat_layout, slices
    from .passes.plan_memory import tensor_ranges

    mp = g.memory_plan
    sliced = slices(g)  # a concatenation slice written in place: only its chunks (tensor_ranges)

    state = [(mp.offsets[t], mp.offsets[t] + g.t(t).nbytes) for t, tt in g.tensors.items()
             if tt.variable and t in mp.offsets]
    out = {None: list(state)}
    for op in g.ops:
        if op.views:  # a concatenation writes only the slices its producers did not
            base = mp.offsets[op.outputs[0]]
            r = [rg for p, s in enumerate(concat_layout(g, op)) if p not in op.views
                 for rg in s.ranges(base + s.offset)]
        else:
            r = [rg for t in op.outputs if t in mp.offsets for rg in tensor_ranges(g, t, sliced)]
        if op.index in mp.scratch_offsets and op.kernel is not None and op.kernel.scratch_bytes:
            s0 = mp.scratch_offsets[op.index]
            r.append((s0, s0 + op.kernel.scratch_bytes))
        for pos in (op.kernel.clobbers if op.kernel is not None else ()):  # its input as working memory
            r += tensor_ranges(g, op.inputs[pos], sliced)
        if any(t is not None and g.t(t).variable for t in op.inputs):
            r += state
        out[op.index] = r
    return out


class WriteChecker:
    def __init__(self, g, arena_addr: int, arena_size: int, keep: int = 8):
        self.ranges = allowed_ranges(g)
        self.base = arena_addr
        self.size = arena_size
        self.layer: Optional[int] = None
        self.violations: list = []
        self.stores = 0
        self._keep = keep
        self._cur = self.ranges[None]

    def on_mark(self, mid: int, _read) -> None:
        self.layer = None if mid == END else mid
        self._cur = self.ranges.get(self.layer, []) if self.layer is not None else self.ranges[None]

    def on_write(self, address: int, size: int) -> None:
        self.stores += 1
        off = address - self.base
        for lo, hi in self._cur:
            if lo <= off and off + size <= hi:
                return
        if len(self.violations) < self._keep:
            self.violations.append((self.layer, off, size))
        else:
            self.violations.append(None)  # counted, not kept


def check_plan_in_simulator(model, core: str = "cortex-m4", opt: str = "-O2", inputs=None, build_dir=None,
                            prefer=None, drop=None, optimize: str = "balanced", prune: bool = True):
    """(violations, stores checked, SimResult) of one inference of `model` with every arena store checked."""
    import tempfile

    from .against import _symbols
    from .bench import build_model_elf, load_inputs
    from .targets.cortex_m.sim import Simulator

    with tempfile.TemporaryDirectory(prefix="spz-plancheck-") as tmp:
        res, elf = build_model_elf(model, core, Path(build_dir or tmp), opt=opt, prefer=prefer, optimize=optimize,
                                   prune=prune)
        names, _ = _symbols(elf)
        g = res.graph
        chk = WriteChecker(g, names["g_arena"], g.memory_plan.arena_size)
        if drop is not None:  # tests: take a layer's ranges away, the checker must object
            chk.ranges[drop] = []
        xs = inputs if inputs is not None else load_inputs(None, res)
        sim = Simulator(elf, core=core)
        r = sim.run([np.ascontiguousarray(x).tobytes() for x in xs], on_mark=chk.on_mark,
                    on_write=(chk.base, chk.base + chk.size, chk.on_write))
    return chk.violations, chk.stores, r
