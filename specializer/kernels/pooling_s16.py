"""int16 AVERAGE_POOL_2D and MAX_POOL_2D (the int16x8 mode; TFLite Micro reference semantics).

How it works
1. Separate registry entries (`avg_pool2d_s16`, `max_pool2d_s16`, template `pool2d_s16.c.in`): the int8 entries
   (pooling.py) refuse int16 tensors. The arithmetic is the int8 one on 16-bit values: TFLM's int16 pooling does
   not requantize either, its prepare fails unless input and output share scale and zero point (any zero point).
2. TFLM accepts an int16 pool writing an int8 output and writes garbage (checked against the oracle): refused.
3. A window entirely in the padding (TFLM's average pool fails at run time) and windows of more than 65535 taps
   (TFLM's int32 sum could overflow) are refused with a one-line reason.
"""
from __future__ import annotations

from typing import Optional

from ..registry import KernelEntry
from .pooling import _emit as _pool_emit
from .pooling import _pool_reject


def _reject(g, op, core) -> Optional[str]:
    return _pool_reject(g, op, "int16", max_taps=65535)


def _emit(ctx):
    _pool_emit(ctx, full=(-32768, 32767))


AVG_S16 = KernelEntry(name="avg_pool2d_s16", ops=("AVERAGE_POOL_2D",), template="pool2d_s16.c.in",
                      emit=_emit, reject=_reject)
MAX_S16 = KernelEntry(name="max_pool2d_s16", ops=("MAX_POOL_2D",), template="pool2d_s16.c.in",
                      emit=_emit, reject=_reject)

ENTRIES = (AVG_S16, MAX_S16)
