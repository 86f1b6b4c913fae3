"""Shared pieces of the per-core cost models.

How it works:
1. A cost model turns one decoded basic block (list of ``isa.Insn``) into a ``BlockCost`` once; the simulator
   caches it by (address, size) and multiplies by execution counts.
2. Dynamic parts are expressed as data the simulator applies cheaply:
   * ``cond_branch``/``taken_extra``: the block ends in a conditional branch; ``taken_extra`` cycles are added
     each time the next executed block does not start at the fall-through address;
   * ``it_extra``: {address: (extra cycles, class index)} added each time that IT-conditional instruction
     passes its condition (a code hook fires only then);
   * divides are costed entirely by a code hook through ``divide_cycles``.
3. ``finish(branch_sites)`` lets a model add whole-run terms (the M7 misprediction estimate); ``branch_sites``
   is {site: [executions, taken]} with one site per cached block that ends in a conditional branch.
"""
from __future__ import annotations

from .isa import CLASSES, CLS

NCLS = len(CLASSES)
BRANCH = CLS["branch"]


class BlockCost:
    """Static cost of one block.  ``by_class`` is a list indexed like ``isa.CLASSES``."""

    __slots__ = ("static", "by_class", "ninsns", "cond_branch", "taken_extra", "branch_addr", "it_extra")

    def __init__(self, ninsns):
        self.static = 0
        self.by_class = [0] * NCLS
        self.ninsns = ninsns
        self.cond_branch = False
        self.taken_extra = 0
        self.branch_addr = None
        self.it_extra = {}

    def add(self, cls, cycles):
        self.static += cycles
        self.by_class[cls] += cycles


def divide_cycles(n: int, d: int, signed: bool) -> int:
    """SDIV/UDIV cycles per COST_MODEL.md: 2 if |n| < |d| (incl. n == 0 and d == 0), else
    2 + ceil(q * 10 / 32) with q = bitlen(|n|) - bitlen(|d|) + 1 (3..12)."""
    n &= 0xFFFFFFFF
    d &= 0xFFFFFFFF
    if signed:
        n = abs(n - (1 << 32) if n & 0x80000000 else n)
        d = abs(d - (1 << 32) if d & 0x80000000 else d)
    if d == 0 or n < d:
        return 2
    q = n.bit_length() - d.bit_length() + 1
    return 2 + (q * 10 + 31) // 32


class CostModel:
    """Interface every core family implements."""

    name = "?"
    uses_it_hooks = True

    def block(self, insns) -> BlockCost:  # pragma: no cover - interface
        raise NotImplementedError

    def divide_cycles(self, n, d, signed):
        return divide_cycles(n, d, signed)

    def finish(self, branch_sites):
        """Whole-run extra cycles, given {branch address: [executions, taken]}; returns (cycles, info dict)."""
        return 0, {}
