"""fold_padding: a PAD that pads H and W with the input zero point is folded into the following conv.

How it works
1. Match PAD(x, paddings) -> p -> CONV_2D / DEPTHWISE_CONV_2D where `p` has no other consumer, is not a graph
   output, the paddings are constant and touch only the H and W axes of an NHWC tensor, and PAD's quantization
   equals its input's (TFLite's int8 PAD fills with the output zero point).
2. TFLite's convolution treats padded taps as the input zero point (they are skipped in the (x - zp) * w sum),
   so the PAD's rows and columns are exactly padding: the conv gets `explicit_padding` = its own padding + the
   PAD amounts, and reads `x` directly. Pooling is not folded: max/avg pooling skip padded taps, not zero points.

    before:  x -> PAD(t1,b1,l1,r1) -> p -> CONV_2D(VALID)      after:  x -> CONV_2D(explicit (t1,b1,l1,r1))
"""
from __future__ import annotations

import dataclasses

from specializer.ir import Graph
from specializer.ops import explicit_padding


def fold_padding(g: Graph) -> Graph:
    changed = True
    while changed:
        changed = False
        for pad in g.ops:
            if pad.kind not in ("PAD", "PADV2"):
                continue
            x, p = g.t(pad.inputs[0]), g.t(pad.outputs[0])
            pads_t = g.t(pad.inputs[1]) if pad.input(1) is not None else None
            if pads_t is None or not pads_t.is_const or len(x.shape) != 4 or p.id in g.outputs:
                continue
            if x.quant != p.quant or x.dtype != "int8":
                continue
            if pad.kind == "PADV2":
                cv = g.t(pad.inputs[2]) if pad.input(2) is not None else None
                if cv is None or not cv.is_const or int(cv.data.reshape(-1)[0]) != p.quant.zero_point[0]:
                    continue
            pads = pads_t.data.reshape(4, 2).astype(int)
            if pads[0].any() or pads[3].any() or (pads < 0).any():
                continue
            cons = g.consumers(p.id)
            if len(cons) != 1 or cons[0].kind not in ("CONV_2D", "DEPTHWISE_CONV_2D") or cons[0].inputs[0] != p.id:
                continue
            conv = cons[0]
            w = g.t(conv.inputs[1])
            kh, kw = (w.shape[1], w.shape[2])
            out = g.t(conv.outputs[0])
            own = explicit_padding(conv.attrs, p.shape[1:3], out.shape[1:3], (kh, kw))
            total = (own[0] + int(pads[1][0]), own[1] + int(pads[1][1]), own[2] + int(pads[2][0]),
                     own[3] + int(pads[2][1]))
            new_conv = dataclasses.replace(
                conv, inputs=(x.id,) + conv.inputs[1:],
                attrs=dataclasses.replace(conv.attrs, padding="EXPLICIT", explicit_padding=total))
            g = g.with_ops([new_conv if o is conv else o for o in g.ops if o is not pad]).prune()
            changed = True
            break
    return g
