"""Cortex-M0+ cost model, derived from the Cortex-M0+ TRM (r0p1, DDI 0484C, Table 3-1 "instruction summary").

How it works:
1. Two-stage pipeline, zero wait states: data processing 1, MOV/ADD to PC 2, MULS 1 (the fast-multiplier
   configuration, the common one; the small multiplier would be 32), LDR*/STR* 2 (no load pipelining),
   LDM/STM/PUSH/POP 1 + N, POP including PC 3 + N, B 2, B<cond> 2 taken / 1 not taken, BL 3, BX/BLX 2,
   DMB/DSB/ISB 3, MRS/MSR 3, CPSID/CPSIE 1.
2. There is no IT, CBZ, divide, DSP or FPU on ARMv6-M; unicorn's Cortex-M0 model rejects them and the simulator's
   static check reports any other 32-bit Thumb-2 instruction as illegal.
"""
from __future__ import annotations

from .cost_base import BlockCost, CostModel

M0_TABLE = {
    "alu": 1, "alu_pc": 2, "mul": 1, "mla": 1, "mull": 1, "mlal": 1, "div": 0,
    "load": 2, "store": 2, "strex": 2, "load_pc": 4, "ldrd": 3, "strd": 3,
    "b": 2, "bl": 3, "bx": 2, "blx": 2, "b_cond": 1, "cbz": 1, "tb": 4,
    "it": 1, "isb": 3, "msr": 3,
    "fp": 1, "fp_mov2": 2, "fp_mac": 3, "fp_div": 14, "vldr32": 2, "vldr64": 3,
}
_BARRIERS = frozenset(("dmb", "dsb", "mrs"))


class M0PlusCost(CostModel):
    name = "m0plus"
    uses_it_hooks = False

    def block(self, insns) -> BlockCost:
        bc = BlockCost(len(insns))
        for ins in insns:
            k = ins.kind
            if k == "ldm":
                c = 1 + ins.nregs + (2 if ins.writes_pc else 0)
            elif k in ("stm", "vldm"):
                c = 1 + ins.nregs
            elif ins.name in _BARRIERS:
                c = 3
            else:
                c = M0_TABLE[k]
            bc.add(ins.cls, c)
        last = insns[-1] if insns else None
        if last is not None and last.cond_branch:
            bc.cond_branch = True
            bc.taken_extra = 1
            bc.branch_addr = last.address
        return bc
