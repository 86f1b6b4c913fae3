"""Kernel entries, one module per op family, listed in one explicit order (see registry.py).

Specialized entries of a family come before its generic entry inside the family's ENTRIES tuple; `registry.select`
ranks by priority, then by this order.
"""
from __future__ import annotations

from . import (activations, band, batch_matmul, conv, data_movement, elementwise, fully_connected, lstm, pooling, quantize, reduce,
               resize_bilinear, softmax, svdf, transpose_conv)

ENTRIES = (
    *conv.ENTRIES,
    *fully_connected.ENTRIES,
    *pooling.ENTRIES,
    *elementwise.ENTRIES,
    *activations.ENTRIES,
    *softmax.ENTRIES,
    *quantize.ENTRIES,
    *data_movement.ENTRIES,
    *reduce.ENTRIES,
    *lstm.ENTRIES,
    *band.ENTRIES,
    *transpose_conv.ENTRIES,
    *batch_matmul.ENTRIES,
    *resize_bilinear.ENTRIES,
    *svdf.ENTRIES,
)
