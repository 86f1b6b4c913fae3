"""BANDED_PAIR (passes/fuse_bands): a convolution and the windowed layer after it, row band by row band.

How it works
1. The op carries a small sub-graph of row-shaped sub-layers (kernels chosen by the registry for the core) and
   the per-output-row schedule. Each sub-layer is emitted by its own entry through a context whose pointers are
   placeholders: the input row block of x, a position in the band (the op's scratch), row oy of y.
2. Per output row: rows the band already holds move to its top (memmove), the P sub-layer computes the missing
   rows into the band, the C sub-layer computes row oy. Rows whose statements agree and whose pointers move by
   a constant stride become one `for` loop over oy.
3. The sub-layers' own scratch sits after the band in the op's scratch.
"""
from __future__ import annotations

from specializer import registry
from specializer.emit import LayerContext
from specializer.registry import KernelEntry


class _SubContext(LayerContext):
    """A sub-layer's emit context: activations are placeholders `@<tid>@`, calls are captured."""

    def __init__(self, outer: LayerContext, sub, op, entry, scratch_off: int):
        super().__init__(outer._m, sub, op, entry, outer.core)
        self.captured: list = []
        self._scratch_off = scratch_off
        self._outer = outer

    def ptr(self, tid: int, ctype=None) -> str:
        t = self.g.t(tid)
        if t.is_const:
            return super().ptr(tid, ctype)
        return f"(({ctype or t.ctype} *)(arena + @{tid}@))"

    def scratch(self, ctype: str = "uint8_t") -> str:
        return f"(({ctype} *)(arena + {self._scratch_off}))"

    def sym(self, suffix: str) -> str:
        return self._outer.sym(f"s{self.op.index}_{suffix}")

    def call(self, code: str) -> None:
        self.captured.append(code)


def emit(ctx):
    op = ctx.op
    a = op.attrs
    sub = a.sub
    mp = ctx.g.memory_plan
    band = mp.scratch_offsets[op.index]  # the band first, then the sub-layers' own scratch
    sub_scr = band + (a.band_rows * a.row_bytes + 3) // 4 * 4
    x_off, y_off = mp.offsets[op.inputs[0]], mp.offsets[op.outputs[0]]
    calls = {}
    for sop in sub.ops:
        sctx = _SubContext(ctx, sub, sop, registry.entry_by_name(sop.kernel.entry), sub_scr)
        sctx.entry.emit(sctx)
        calls[sop.index] = ("\n".join(sctx.captured), sop.inputs[0], sop.outputs[0])
        ctx._m.layer_fn.setdefault(op.index, ctx._m.layer_fn.get(sop.index, ""))

    def statements(s, var):
        """C statements of step s; with var, pointer offsets are written in terms of the loop variable."""
        out = []
        if s.keep and s.keep_from:
            out.append(f"memmove(arena + {band}, arena + {band + s.keep_from * a.row_bytes}, "
                       f"{s.keep * a.row_bytes}u);")
        if s.p_op >= 0:
            code, i, o = calls[s.p_op]
            xo = f"{x_off + s.x_row * a.x_row_bytes}" if var is None else \
                f"{x_off + (s.x_row - s.oy * dx) * a.x_row_bytes} + {dx * a.x_row_bytes} * {var}"
            out.append(code.replace(f"@{i}@", xo).replace(f"@{o}@", f"{band + s.p_at * a.row_bytes}"))
        code, i, o = calls[s.c_op]
        yo = f"{y_off + s.oy * a.y_row_bytes}" if var is None else f"{y_off} + {a.y_row_bytes} * {var}"
        out.append(code.replace(f"@{i}@", f"{band}").replace(f"@{o}@", yo))
        return out

    steps = list(a.steps)
    k = 0
    ctx.call("{")
    while k < len(steps):
        s = steps[k]
        dx = steps[k + 1].x_row - s.x_row if k + 1 < len(steps) else 0
        j = k + 1
        while j < len(steps) and _same_shape(steps[j], s) and _linear(steps[k], steps[j], dx):
            j += 1
        if j - k >= 3:
            body = statements(s, "oy")
            ctx.call(f"    for (int32_t oy = {s.oy}; oy < {steps[j - 1].oy + 1}; ++oy) {{")
            for line in body:
                ctx.call("        " + line.replace("\n", "\n        "))
            ctx.call("    }")
            k = j
        else:
            for line in statements(s, None):
                ctx.call("    " + line.replace("\n", "\n    "))
            k += 1
    ctx.call("}")


def _same_shape(s, t) -> bool:
    return (s.keep_from, s.keep, s.p_op, s.p_at, s.c_op) == (t.keep_from, t.keep, t.p_op, t.p_at, t.c_op)


def _linear(first, s, dx: int) -> bool:
    """The P input row of step s lies on the line through the run's first step with slope dx rows per oy."""
    return s.p_op < 0 or s.x_row - first.x_row == dx * (s.oy - first.oy)


def scratch_bytes(g, op) -> int:
    return op.kernel.scratch_bytes if op.kernel is not None else 0


def reorder(g, op):
    """Each sub-layer's constants into its kernel's layout (the sub-graph's own reorder_weights)."""
    import dataclasses

    from specializer.passes.reorder_weights import reorder_weights

    return g, dataclasses.replace(op, attrs=dataclasses.replace(op.attrs, sub=reorder_weights(op.attrs.sub)))


ENTRY = KernelEntry(name="band_pair", ops=("BANDED_PAIR",), template=None, emit=emit, scratch_bytes=scratch_bytes,
                    reorder=reorder)
ENTRIES = (ENTRY,)
