"""The kernel registry: one entry per kernel, the single place that decides which kernel runs a layer.

How it works
1. A `KernelEntry` says which op kinds it implements, a predicate (`reject`) over the layer and the target core,
   the C template it instantiates, the template arguments for a layer (equal arguments => one shared C function),
   how much scratch memory it needs, which input buffers its output may overwrite (in-place), and how to emit the
   per-layer call. Choosing a kernel and sizing its scratch read the same entry, so they cannot drift apart.
2. `ENTRIES` (in `specializer.kernels`) is one explicit ordered list; `select(g, op, core)` returns the first
   entry, in priority order, whose predicate accepts the layer. Specialized entries sit before the generic ones
   and the generic entry of every op accepts every legal layer, so there is always a bit-exact fallback.
3. `passes.select_kernels` stores the choice on the op (`Op.kernel`) before memory planning; the emitter looks
   the entry up again by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from .errors import ShapeError, UnsupportedOpError

if TYPE_CHECKING:  # pragma: no cover
    from .emit import LayerContext
    from .ir import Graph, Op


def _accept_all(g, op, core) -> Optional[str]:
    return None


def _no_scratch(g, op) -> int:
    return 0


def _no_args(g, op) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class KernelEntry:
    name: str  # unique; also the base of the emitted C function name (naming grammar in DESIGN.md §5.9)
    ops: tuple[str, ...]  # op kinds implemented
    template: Optional[str]  # file under specializer/kernels/ (or targets/.../kernels/), None for emit-only kernels
    emit: Callable[["LayerContext"], None]  # writes the layer's call (and its per-layer constants)
    reject: Callable[["Graph", "Op", Any], Optional[str]] = _accept_all  # None = accepted, else the reason
    scratch_bytes: Callable[["Graph", "Op"], int] = _no_scratch
    template_args: Callable[["Graph", "Op"], Mapping[str, Any]] = _no_args
    # input positions whose buffer the output may reuse (same size, dies here); or a function (g, op) -> positions
    # for kernels whose in-place ability depends on the layer (e.g. a 1x1 convolution with equal channel counts)
    inplace: Any = ()
    priority: int = 0  # higher wins among accepting entries; generic kernels use 0
    generic: bool = True  # the portable plain-C reference path
    requires: frozenset = field(default_factory=frozenset)  # core features needed ("dsp", "mve", ...)
    reorder: Optional[Callable[["Graph", "Op"], tuple]] = None  # weights into the kernel's layout: (g, op) -> (g, op)
    variants: Optional[Callable[["Graph", "Op"], list]] = None  # candidates for passes/choose_variants
    # (g, op) -> ((input position, D), ...): the output may overlap the dying input if in_off - out_off >= D
    overlap: Optional[Callable[["Graph", "Op"], tuple]] = None
    # (g, op) -> input positions the kernel overwrites while it runs (working memory in a dying input)
    clobbers: Optional[Callable[["Graph", "Op"], tuple]] = None
    # the kernel can write its output pixels (last-axis vectors) at a stride (KernelChoice.ostride): a producer
    # that writes straight into its slice of a channel CONCATENATION (passes/concat_views)
    ostride: bool = False


def entries() -> tuple[KernelEntry, ...]:
    """Every kernel entry: the target-owned specialized kernels, then the portable generic kernels."""
    from .kernels import ENTRIES
    from .targets.cortex_m.kernels import ENTRIES as CORTEX_M

    return CORTEX_M + ENTRIES


def inplace_positions(e: KernelEntry, g: "Graph", op: "Op") -> tuple[int, ...]:
    """The entry's in-place input positions for this layer."""
    return tuple(e.inplace(g, op) if callable(e.inplace) else e.inplace)


def overlap_constraints(e: KernelEntry, g: "Graph", op: "Op") -> tuple:
    """The entry's (input position, minimum input - output offset) pairs for this layer."""
    return tuple(e.overlap(g, op)) if e.overlap is not None else ()


def out_pixel_stride(op: "Op", channels: int) -> int:
    """Elements between the output pixels an `ostride` entry writes: `channels`, or the channels of the
    concatenation whose slice its output is (KernelChoice.ostride)."""
    return op.kernel.ostride if op.kernel is not None and op.kernel.ostride else channels


def clobber_positions(e: KernelEntry, g: "Graph", op: "Op") -> tuple:
    """Input positions the entry's kernel overwrites while it runs, for this layer."""
    return tuple(e.clobbers(g, op)) if e.clobbers is not None else ()


def entry_by_name(name: str) -> KernelEntry:
    for e in entries():
        if e.name == name:
            return e
    raise KeyError(f"no kernel entry named {name!r}")


def select(g: "Graph", op: "Op", core: Any = None, generic_only: bool = False) -> KernelEntry:
    """The entry that runs `op` on `core` (None = portable host build). Raises a one-line user error."""
    candidates = [e for e in entries() if op.kind in e.ops]
    if not candidates:
        raise UnsupportedOpError(f"op #{op.index} {op.kind} has no kernel")
    features = frozenset(getattr(core, "features", ()) or ())
    reasons = []
    ranked = sorted(enumerate(candidates), key=lambda ie: (-ie[1].priority, ie[0]))
    for _, e in ranked:
        if generic_only and not e.generic:
            continue
        if not e.requires <= features:
            continue
        why = e.reject(g, op, core)
        if why is None:
            return e
        reasons.append(f"{e.name}: {why}")
    raise ShapeError(f"op #{op.index} {op.kind}: no kernel can take this layer ({'; '.join(reasons)})")
