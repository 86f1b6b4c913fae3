"""Kernels the Cortex-M target owns: per-layer specialized templates (`*.c.in`) with one registry entry each.

Each module holds the entry for one op family; `ENTRIES` lists them in one explicit order. The registry
(`specializer.registry`) ranks all entries by priority: these carry a priority above the generic portable kernels
and `requires` the core features they use (e.g. "dsp"), so a layer falls back to the generic bit-exact kernel
wherever an entry's predicate refuses it.
"""
from __future__ import annotations

from . import conv, depthwise, elementwise, fc_band, fully_connected, lstm, pooling, s16, scalar, scalar_dw

ENTRIES = (
    conv.ENTRY,
    depthwise.ENTRY,
    fully_connected.ENTRY,
    elementwise.ENTRY,
    pooling.MAX_ENTRY,
    pooling.AVG_ENTRY,
    lstm.ENTRY,
    s16.CONV_ENTRY,
    s16.FC_ENTRY,
    s16.DW_ENTRY,
    scalar.CONV_ENTRY,
    scalar.IM2COL_ENTRY,
    scalar.FC_ENTRY,
    scalar_dw.ENTRY,
    fc_band.ENTRY,
)
