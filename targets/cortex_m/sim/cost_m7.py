"""Cortex-M7 cost model -- a ROUGH APPROXIMATION (COST_MODEL.md "Cortex-M7 -- rough approximation").

The M7 TRM has no complete cycle table; these are assumptions useful for ranking code on an M7-class core, not
for absolute numbers.
How it works:
1. Greedy in-order dual issue inside a block: adjacent instructions pair unless one is multi-cycle (LDM/STM/PUSH/
   POP, DIV, VDIV/VSQRT, VLDM), the first is a branch, both access memory, both multiply, both are FP, both use the
   shifter, the second is a DSP/SIMD op, or the second reads or writes a register the first writes (flags
   ignored).  A pair costs max of the two; the cycles go to the class of the costlier instruction.
2. Costs: ALU/MUL/DSP 1; single loads/stores, LDRD/STRD, VLDR/VSTR 1; LDM/STM/PUSH/POP/VLDM 1 + ceil(N/2);
   SDIV/UDIV the M4 formula (hook); VDIV/VSQRT 14 (F32) / 29 (F64); other FP 1.
3. Stalls between issue groups: +1 if an instruction reads the result of a load or multiply of the previous group
   (not for a MAC reading a MAC result only as its accumulator), +2 for an FP arithmetic result.
4. Branches: direct 1; indirect (BX/BLX reg, POP/LDM/LDR PC, TBB/TBH, MOV/ADD PC) 3; conditional branches: per
   branch site min(taken, not taken) mispredictions charged 4 cycles each, at the end of the run (``finish``).
5. IT-skipped instructions are costed as executed (no IT hooks).
"""
from __future__ import annotations

from .cost_base import BRANCH, BlockCost, CostModel

_MULTI = frozenset(("ldm", "stm", "vldm", "div", "fp_div"))
_MEM = frozenset(("load", "store", "strex", "load_pc", "ldrd", "strd", "vldr32", "vldr64", "ldm", "stm", "vldm"))
_MULK = frozenset(("mul", "mla", "mull", "mlal"))
_INDIRECT_COST = 3


def _cost(ins) -> int:
    k = ins.kind
    if k in ("ldm", "stm", "vldm"):
        return 1 + (ins.nregs + 1) // 2 + (2 if ins.writes_pc else 0)
    if k == "div":
        return 0
    if k == "fp_div":
        return 29 if ins.fp_double else 14
    if ins.indirect or k in ("alu_pc", "load_pc", "tb"):
        return _INDIRECT_COST
    return 1


def _can_pair(a, b) -> bool:
    if a.kind in _MULTI or b.kind in _MULTI:
        return False
    if a.cls == BRANCH or a.writes_pc:
        return False
    if a.kind in _MEM and b.kind in _MEM:
        return False
    if a.kind in _MULK and b.kind in _MULK:
        return False
    if a.is_fp and b.is_fp:
        return False
    if a.shifter and b.shifter:
        return False
    if b.dsp:
        return False
    if a.writes & (b.reads | b.writes):
        return False
    return True


class M7Cost(CostModel):
    name = "m7"
    uses_it_hooks = False
    mispredict_penalty = 4

    def block(self, insns) -> BlockCost:
        bc = BlockCost(len(insns))
        groups = []
        i = 0
        while i < len(insns):
            if i + 1 < len(insns) and _can_pair(insns[i], insns[i + 1]):
                groups.append((insns[i], insns[i + 1]))
                i += 2
            else:
                groups.append((insns[i],))
                i += 1
        prev = ()
        for g in groups:
            best = max(g, key=_cost)
            bc.add(best.cls, _cost(best))
            stall = 0
            for p in prev:
                for ins in g:
                    hit = ins.reads & p.writes
                    if not hit:
                        continue
                    if p.fp_arith:
                        stall = max(stall, 2)
                    elif p.kind in ("load", "ldrd", "vldr32", "vldr64", "ldm", "strex") or (
                            p.kind in _MULK and not (p.mac_srcs and ins.mac_srcs and not (hit & ins.mac_srcs))):
                        stall = max(stall, 1)
            if stall:
                bc.add(g[0].cls, stall)
            prev = g
        last = insns[-1] if insns else None
        if last is not None and last.cond_branch:
            bc.cond_branch = True
            bc.taken_extra = 0
            bc.branch_addr = last.address
        return bc

    def finish(self, branch_sites):
        misp = sum(min(t, n - t) for n, t in branch_sites.values())
        return misp * self.mispredict_penalty, {"m7_mispredicted_branches": misp}
