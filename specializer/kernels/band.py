"""BANDED_PAIR (passes/fuse_bands): a convolution and the windowed layer after it, row band by row band.

How it works
1. The op carries a small sub-graph of row-shaped sub-layers (kernels chosen by the registry for the core) and
   the per-output-row schedule. Each sub-layer is emitted by its own entry through a context whose pointers are
   placeholders: the input row block of x, a position in the band (the op's scratch), row oy of y.
2. Per output row: rows the band already holds move to its top (memcpy row by row), the P sub-layer computes the missing
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


def sub_calls(ctx, sub_scr: int) -> dict:
    """Each sub-layer of the op's `attrs.sub` emitted through its own entry: index -> (call code with `@tid@`
    placeholders for its activations, its inputs, its output); their scratch starts at arena offset sub_scr."""
    op = ctx.op
    sub = op.attrs.sub
    calls = {}
    for sop in sub.ops:
        sctx = _SubContext(ctx, sub, sop, registry.entry_by_name(sop.kernel.entry), sub_scr)
        sctx.entry.emit(sctx)
        calls[sop.index] = ("\n".join(sctx.captured), sop.inputs, sop.outputs[0])
        ctx._m.layer_fn.setdefault(op.index, ctx._m.layer_fn.get(sop.index, ""))
    return calls


def emit(ctx):
    op = ctx.op
    a = op.attrs
    mp = ctx.g.memory_plan
    band = mp.scratch_offsets[op.index]  # the band, C's rows and S's rows (residual blocks), sub-layers' scratch
    c_rows = band + (a.band_rows * a.row_bytes + 3) // 4 * 4
    s_rows = c_rows + a.c_out_bytes
    sub_scr = s_rows + a.s_out_bytes
    x_off, y_off = mp.offsets[op.inputs[0]], mp.offsets[op.outputs[0]]
    calls = sub_calls(ctx, sub_scr)
    residual = a.a_index >= 0

    def lin(base: int, first: int, per_step: int, unit: int, var) -> str:
        """Arena offset base + row * unit, the row being `first` (var None) or first + per_step * var."""
        if var is None:
            return f"{base + first * unit}"
        return f"{base + first * unit} + {per_step * unit} * {var}"

    def statements(s, d, var):
        """C statements of step s; with var, row offsets move by d (per-step row deltas) per loop iteration."""
        out = []
        if s.keep and s.keep_from:  # row by row (ascending): each copy's source and destination are apart
            for r in range(s.keep):
                out.append(f"memcpy(arena + {band + r * a.row_bytes}, "
                           f"arena + {band + (r + s.keep_from) * a.row_bytes}, {a.row_bytes}u);")
        if s.p_op >= 0:
            code, i, o = calls[s.p_op]
            out.append(code.replace(f"@{i[0]}@", lin(x_off, s.x_row, d["x"], a.x_row_bytes, var))
                       .replace(f"@{o}@", f"{band + s.p_at * a.row_bytes}"))
        y_at = lin(y_off, s.oy, d["y"], a.y_row_bytes, var)
        code, i, o = calls[s.c_op]
        out.append(code.replace(f"@{i[0]}@", f"{band}").replace(f"@{o}@", f"{c_rows}" if residual else y_at))
        if residual:
            if s.s_op >= 0:
                code, i, o = calls[s.s_op]
                res_at = f"{band + s.s_at}" if a.s_in_band else f"{s_rows}"
                out.append(code.replace(f"@{i[0]}@", lin(x_off, s.s_x_row, d["s"], a.x_row_bytes, var))
                           .replace(f"@{o}@", res_at))
            else:  # identity shortcut: the block input's rows, same shape as the output
                res_at = lin(x_off, s.oy, d["y"], a.x_row_bytes, var)
            code, i, o = calls[s.a_op]
            ins = {a.res_pos: f"{c_rows}", 1 - a.res_pos: res_at}
            for k in (0, 1):
                code = code.replace(f"@{i[k]}@", ins[k])
            out.append(code.replace(f"@{o}@", y_at))
        return out

    def deltas(s, t) -> dict:
        return dict(x=t.x_row - s.x_row, y=t.oy - s.oy, s=t.s_x_row - s.s_x_row)

    steps = list(a.steps)
    k = 0
    ctx.call("{")
    while k < len(steps):
        s = steps[k]
        d = deltas(s, steps[k + 1]) if k + 1 < len(steps) else dict(x=0, y=0, s=0)
        j = k + 1
        while j < len(steps) and _same_shape(steps[j], s) and _linear(s, steps[j], j - k, d):
            j += 1
        if j - k >= 3:
            body = statements(s, d, "i")
            ctx.call(f"    for (int32_t i = 0; i < {j - k}; ++i) {{")
            for line in body:
                ctx.call("        " + line.replace("\n", "\n        "))
            ctx.call("    }")
            k = j
        else:
            for line in statements(s, d, None):
                ctx.call("    " + line.replace("\n", "\n    "))
            k += 1
    ctx.call("}")


def _same_shape(s, t) -> bool:
    return (s.keep_from, s.keep, s.p_op, s.p_at, s.c_op, s.n, s.s_op, s.a_op, s.s_at) == \
        (t.keep_from, t.keep, t.p_op, t.p_at, t.c_op, t.n, t.s_op, t.a_op, t.s_at)


def _linear(first, s, k: int, d: dict) -> bool:
    """Step s, k steps after the run's first, has its rows on the lines through the first's with slopes d."""
    return (s.oy - first.oy == d["y"] * k and (s.p_op < 0 or s.x_row - first.x_row == d["x"] * k)
            and (s.s_op < 0 or s.s_x_row - first.s_x_row == d["s"] * k))


def overlap(g, op) -> tuple:
    """The output may chase the input: step by step, the bytes of y written so far against the first byte of x
    a later step reads (P's and S's windows, the identity shortcut's rows). Within a step every read of x comes
    before the writes, except the identity shortcut's, which the ADD reads element by element at or after the
    address it writes (so the output never starts after the input: D >= 0)."""
    from specializer.kernels.overlap import NONE, gap

    a = op.attrs
    steps = []
    for s in a.steps:
        reads = [r for r, used in ((s.x_row, s.p_op >= 0), (s.s_x_row, s.s_op >= 0),
                                   (s.oy, a.a_index >= 0 and a.s_index < 0)) if used]
        first = min(reads) * a.x_row_bytes if reads else NONE
        steps.append(((s.oy + s.n) * a.y_row_bytes, first))
    d = gap(steps)
    if d is None:
        return ()
    return ((0, max(d, 0)),)


def scratch_bytes(g, op) -> int:
    return op.kernel.scratch_bytes if op.kernel is not None else 0


def reorder(g, op):
    """Each sub-layer's constants into its kernel's layout (the sub-graph's own reorder_weights)."""
    import dataclasses

    from specializer.passes.reorder_weights import reorder_weights

    return g, dataclasses.replace(op, attrs=dataclasses.replace(op.attrs, sub=reorder_weights(op.attrs.sub)))


ENTRY = KernelEntry(name="band_pair", ops=("BANDED_PAIR",), template=None, emit=emit, scratch_bytes=scratch_bytes,
                    reorder=reorder, overlap=overlap)
ENTRIES = (ENTRY,)
