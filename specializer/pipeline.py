"""The ordered compilation pipeline: one explicit list that reads top to bottom (no registration by import).

How it works
1. `PIPELINE` names each pass and the function that runs it; options (target core, planner alignment) are bound
   by `build_pipeline`, so every pass is still a plain Graph -> Graph function.
2. `run_pipeline` runs them in order, optionally verifying the graph after each pass (tests do) and dumping the
   IR after a named pass (`--dump-after PASS`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from .ir import Graph, dump, verify
from .passes.choose_variants import choose_variants
from .passes.concat_views import concat_views
from .passes.eliminate_reshapes import eliminate_reshapes
from .passes.fold_constants import fold_constants
from .passes.fold_padding import fold_padding
from .passes.fold_zero_points import fold_zero_points
from .passes.fuse_activations import fuse_activations
from .passes.fuse_bands import fuse_bands, rechoose_variants
from .passes.order_ops import order_ops
from .passes.plan_memory import plan_memory
from .passes.precompute_requant import precompute_requant
from .passes.prune_channels import prune_channels
from .passes.reorder_weights import reorder_weights
from .passes.select_kernels import select_kernels

PASS_NAMES = ("fold_constants", "fuse_activations", "fold_padding", "eliminate_reshapes", "precompute_requant",
              "prune_channels", "fold_zero_points", "select_kernels", "choose_variants", "fuse_bands",
              "rechoose_variants", "reorder_weights", "order_ops", "concat_views", "plan_memory")


def build_pipeline(core: Any = None, generic_only: bool = False, alignment: int = 4,
                   flash_budget: Any = "default", prefer: Any = None, share_all: bool = False,
                   prune: bool = True, optimize: str = "balanced") -> list[tuple[str, Callable[[Graph], Graph]]]:
    return [
        ("fold_constants", fold_constants),
        ("fuse_activations", fuse_activations),
        ("fold_padding", fold_padding),
        ("eliminate_reshapes", eliminate_reshapes),
        ("precompute_requant", precompute_requant),
        ("prune_channels", prune_channels if prune else (lambda g: g)),
        ("fold_zero_points", fold_zero_points),
        ("select_kernels", lambda g: select_kernels(g, core, generic_only=generic_only)),
        ("choose_variants", lambda g: choose_variants(g, flash_budget, prefer, optimize)),
        ("fuse_bands", lambda g: fuse_bands(g, core, generic_only=generic_only,
                                            force=bool(prefer and prefer.get("BAND")), optimize=optimize,
                                            rechoose=lambda h: rechoose_variants(h, flash_budget, prefer,
                                                                                 optimize))),
        ("rechoose_variants", lambda g: rechoose_variants(g, flash_budget, prefer, optimize)),
        ("reorder_weights", reorder_weights),
        ("order_ops", lambda g: order_ops(g, alignment=alignment, share_all=share_all)),
        ("concat_views", lambda g: concat_views(g, alignment=alignment, share_all=share_all)),
        ("plan_memory", lambda g: plan_memory(g, alignment=alignment, share_all=share_all)),
    ]


def run_pipeline(g: Graph, core: Any = None, *, verify_each: bool = False, dump_after: Optional[str] = None,
                 dump_sink: Optional[Callable[[str], None]] = None, generic_only: bool = False,
                 stop_after: Optional[str] = None, flash_budget: Any = "default", prefer: Any = None,
                 share_all: bool = False, prune: bool = True, optimize: str = "balanced") -> Graph:
    if dump_after is not None and dump_after not in PASS_NAMES:
        from .errors import SpecializerError

        raise SpecializerError(f"--dump-after: unknown pass {dump_after!r}; passes: {', '.join(PASS_NAMES)}")
    if verify_each:
        verify(g)
    for name, fn in build_pipeline(core, generic_only=generic_only, flash_budget=flash_budget, prefer=prefer,
                                   share_all=share_all, prune=prune, optimize=optimize):
        g = fn(g)
        if verify_each:
            verify(g)
        if dump_after == name and dump_sink is not None:
            dump_sink(dump(g))
        if stop_after == name:
            break
    return g
