"""The "chasing" overlap of a kernel's output over its dying input (used by `KernelEntry.overlap`).

How it works
1. A kernel that walks its output in increasing addresses, and its input too, may write its output over input
   bytes it will not read again. Describe its work as steps in processing order, each a pair
   (bytes of output written once the step is done, first input byte the step reads), both relative to the
   buffers' starts.
2. `gap(steps, own=False)`: the smallest D such that, with input offset - output offset >= D, no step's writes
   reach an input byte that a later step (or, with own=True, the same step: for kernels that interleave a step's
   writes with its reads) still reads. The planner may then overlap the two buffers at that distance.
"""
from __future__ import annotations

from typing import Optional, Sequence

NONE = 1 << 40  # a step that reads no input byte


def first_tap(o: int, stride: int, pad: int, k: int, dilation: int, n: int) -> Optional[int]:
    """The first input coordinate (of `n`) that output coordinate `o` reads through a window of `k` taps;
    None when every tap falls in the padding."""
    for t in range(k):
        i = o * stride - pad + t * dilation
        if 0 <= i < n:
            return i
    return None


def gap(steps: Sequence[tuple[int, int]], own: bool = False) -> Optional[int]:
    """max over steps j of (output written after j) - (first input byte read from step j + 1 on, or j on with
    own=True); None when no step reads anything later (no constraint, nothing to gain)."""
    best = None
    later = NONE
    for j in range(len(steps) - 1, -1, -1):
        written, first = steps[j]
        if own:
            later = min(later, first)
        if later < NONE:
            best = written - later if best is None else max(best, written - later)
        if not own:
            later = min(later, first)
    return best
