"""Cortex-M3 cost model, derived from the Cortex-M3 TRM (r2p1, DDI 0337, Table 18-1 "instruction set summary").

How it works:
1. Same structure and context rules as the Cortex-M4 model (the M3 TRM has the same load/store pipelining text
   and the same "1 + P" branch timings; P fixed at 2), with the M3's multiplier timings:
   MUL 1, MLA/MLS 2, SMULL/UMULL "3 to 5", SMLAL/UMLAL "4 to 7" (early termination on operand size).
2. Assumption: the long multiplies are costed at fixed mid-range values, SMULL/UMULL 4 and SMLAL/UMLAL 5 (the TRM
   gives only the ranges).  SDIV/UDIV use the M4 divide formula (same 2..12 range in the M3 TRM).
3. The M3 has no DSP extension and no FPU: such instructions are reported as illegal by the simulator.
"""
from __future__ import annotations

from .cost_m4 import M4_TABLE, M4Cost

M3_TABLE = dict(M4_TABLE, mla=2, mull=4, mlal=5)


class M3Cost(M4Cost):
    name = "m3"
    table = M3_TABLE
    fpu_stall = False
