"""Kernels for this op family (to be filled in): see fully_connected.py for the shape of an entry."""
from __future__ import annotations

ENTRIES = ()
