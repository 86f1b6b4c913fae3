"""Cortex-M4 cost model (exact rules of /work/shared/COST_MODEL.md; also used for Cortex-M33 and M55).

How it works:
1. ``base_cycles(ins)`` looks the instruction up in the Cortex-M4 TRM table (DDI 0439D T3-1, T3-2, T7-1) with
   the pipeline refill P fixed at 2.
2. ``M4Cost.block`` walks the block in program order applying the context rules: load/store pipelining after a
   single load (3.3.2), the FPU result stall (+1 when the next instruction reads an FP arithmetic result, except
   as a MAC addend), IT-conditional instructions costed 1 with (full - 1) added per passing execution by a hook,
   divides costed by a hook, a conditional branch ending the block costed 1 + P when taken.
Deviation from DESIGN.md section 4 (COST_MODEL.md wins where they differ): DESIGN.md lists "a load/store whose
address comes from the previous ALU result +1"; COST_MODEL.md has no such rule, so it is not applied.
Cortex-M33 (and M55, whose MVE is not simulated) reuse this table: neither has a public cycle table.
"""
from __future__ import annotations

from .cost_base import BlockCost, CostModel
from .isa import CLS

P = 2
_SINGLE_LS = frozenset(("load", "store", "strex"))
_LOAD_LIKE = frozenset(("load", "strex"))
FPU = CLS["fpu"]

M4_TABLE = {
    "alu": 1, "alu_pc": 1 + P, "mul": 1, "mla": 1, "mull": 1, "mlal": 1, "div": 0,
    "load": 2, "store": 2, "strex": 2, "load_pc": 2 + P, "ldrd": 3, "strd": 3,
    "b": 1 + P, "bl": 1 + P, "bx": 1 + P, "blx": 1 + P, "b_cond": 1, "cbz": 1, "tb": 2 + P,
    "it": 1, "isb": 1 + P, "msr": 2,
    "fp": 1, "fp_mov2": 2, "fp_mac": 3, "fp_div": 14, "vldr32": 2, "vldr64": 3,
}


class M4Cost(CostModel):
    """Cortex-M4 (zero wait states).  Subclasses override ``table``/``name`` (Cortex-M3)."""

    name = "m4"
    table = M4_TABLE
    pipelining = True
    fpu_stall = True

    def base_cycles(self, ins) -> int:
        k = ins.kind
        if k == "ldm":
            return 1 + ins.nregs + (P if ins.writes_pc else 0)
        if k in ("stm", "vldm"):
            return 1 + ins.nregs
        return self.table[k]

    def block(self, insns) -> BlockCost:
        bc = BlockCost(len(insns))
        costs = [self.base_cycles(i) for i in insns]
        prev = None
        for idx, ins in enumerate(insns):
            c = costs[idx]
            if (self.pipelining and prev is not None and ins.kind in _SINGLE_LS and prev.kind in _LOAD_LIKE
                    and not (ins.addr_regs & prev.load_dests)):
                c = 1
            costs[idx] = c
            if self.fpu_stall and prev is not None and prev.fp_arith:
                hit = ins.reads & prev.writes
                if hit and not (ins.kind == "fp_mac" and not (hit & ins.mac_srcs)):
                    bc.add(FPU, 1)
                    if prev.it_cond:  # the stall only happens when the producer executes
                        bc.add(FPU, -1)
                        e, cl = bc.it_extra[prev.address]
                        bc.it_extra[prev.address] = (e + 1, cl)
            if ins.it_cond:
                bc.add(ins.cls, 1)
                bc.it_extra[ins.address] = (c - 1, ins.cls)
            else:
                bc.add(ins.cls, c)
            prev = ins
        last = insns[-1] if insns else None
        if last is not None and last.cond_branch:
            bc.cond_branch = True
            bc.taken_extra = P
            bc.branch_addr = last.address
        return bc

