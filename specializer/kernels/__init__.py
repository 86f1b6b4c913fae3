"""Kernel entries, one module per op family, listed in one explicit order (see registry.py).

Specialized entries of a family come before its generic entry inside the family's ENTRIES tuple; `registry.select`
ranks by priority, then by this order.
"""
from __future__ import annotations

from . import (activations, activations_s16, band, batch_matmul, conv, conv_s16, data_movement, elementwise,
               fully_connected, lstm, pooling, pooling_s16, quantize, reduce, resize_bilinear, softmax, softmax_s16,
               svdf, transpose_conv)

ENTRIES = (
    *conv.ENTRIES,
    *conv_s16.ENTRIES,
    *fully_connected.ENTRIES,
    *pooling.ENTRIES,
    *pooling_s16.ENTRIES,
    *elementwise.ENTRIES,
    *activations.ENTRIES,
    *activations_s16.ENTRIES,
    *softmax.ENTRIES,
    *softmax_s16.ENTRIES,
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
