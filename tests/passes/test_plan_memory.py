"""Tests of passes.liveness and passes.plan_memory: liveness, placement, in-place, scratch, the checker, models."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specializer.ir import Graph, IRError, KernelChoice, MemoryPlan, Op, Tensor, verify
from specializer.ops import NoAttrs
from specializer.passes.liveness import buffer_of, buffers, inplace_candidates, live_bytes, peak_live_bytes
from specializer.passes.plan_memory import ORDERINGS, check_plan, plan_memory, timeline
from specializer.registry import KernelEntry

MODELS = Path(__file__).resolve().parents[3] / "shared" / "models"
BASELINES = Path(__file__).resolve().parents[3] / "shared" / "baselines" / "baselines.json"


# ---- fake kernel registry ----------------------------------------------------------------------------------
def _entry(name, inplace=()):
    return KernelEntry(name=name, ops=("ADD", "CONV_2D", "RELU"), template=None, emit=lambda ctx: None,
                       inplace=inplace)


FAKE_ENTRIES = (_entry("plain"), _entry("inplace0", (0,)), _entry("inplace01", (0, 1)))


def fake_registry():
    return mock.patch("specializer.registry.entries", return_value=FAKE_ENTRIES)


# ---- graph building ----------------------------------------------------------------------------------------
def make_graph(sizes, ops, inputs, outputs, consts=(), variables=()):
    """sizes: {tid: bytes}; ops: list of (inputs, outputs, extra Op fields dict)."""
    tensors = {}
    for tid, n in sizes.items():
        data = np.zeros((n,), np.int8) if tid in consts else None
        tensors[tid] = Tensor(id=tid, name=f"t{tid}", shape=(n,), dtype="int8", data=data,
                              variable=tid in variables)
    oplist = []
    for k, (ins, outs, kw) in enumerate(ops):
        kw = dict(kw)
        kind = kw.pop("kind", "ADD")
        oplist.append(Op(kind=kind, inputs=tuple(ins), outputs=tuple(outs), attrs=NoAttrs(), index=k, **kw))
    oplist = tuple(oplist)
    g = Graph(tensors=tensors, ops=oplist, inputs=tuple(inputs), outputs=tuple(outputs), name="t")
    verify(g)
    return g


def planned(g, **kw):
    with fake_registry():
        h = plan_memory(g, **kw)
        verify(h)  # runs check_plan
        check_plan(h)
    return h


def chain(n_ops=2, size=100, kernel="inplace0"):
    """%0 -> op0 -> %1 -> op1 -> %2 ...; every op's kernel is `kernel`."""
    sizes = {i: size for i in range(n_ops + 1)}
    ops = [([i], [i + 1], {"kernel": KernelChoice(kernel)}) for i in range(n_ops)]
    return make_graph(sizes, ops, [0], [n_ops])


# ---- liveness ----------------------------------------------------------------------------------------------
def test_liveness_basic_lifetimes():
    # %0 input, op0: %0 -> %1, op1: %1 -> %2, op2: (%1, %2) -> %3 output; %4 const weight; %5 empty
    g = make_graph({0: 10, 1: 20, 2: 30, 3: 40, 4: 8, 5: 0},
                   [([0, 4], [1, 5], {}), ([1], [2], {}), ([1, 2, 5], [3], {})], [0], [3], consts={4})
    bufs = {b.tensors: b for b in buffers(g)}
    assert set(bufs) == {(0,), (1,), (2,), (3,)}  # const %4 and empty %5 are not planned
    assert (bufs[(0,)].first, bufs[(0,)].last) == (0, 0)
    assert (bufs[(1,)].first, bufs[(1,)].last) == (0, 2)
    assert (bufs[(2,)].first, bufs[(2,)].last) == (1, 2)
    assert (bufs[(3,)].first, bufs[(3,)].last) == (2, 3)  # graph output lives to n
    assert all(b.kind == "tensor" for b in bufs.values())
    assert peak_live_bytes(g) == 20 + 30 + 40


def test_liveness_alias_chain_union():
    # op1 and op2 are views: %2 = view(%1), %3 = view(%2); %1 is read again at op4
    g = make_graph({0: 8, 1: 16, 2: 16, 3: 16, 4: 4, 5: 4},
                   [([0], [1], {}), ([1], [2], {"alias_of": 1, "kind": "RESHAPE"}),
                    ([2], [3], {"alias_of": 2, "kind": "RESHAPE"}), ([3], [4], {}), ([1, 4], [5], {})],
                   [0], [5])
    bufs = buffers(g)
    grp = [b for b in bufs if 1 in b.tensors][0]
    assert grp.tensors == (1, 2, 3)
    assert (grp.first, grp.last) == (0, 4)
    assert grp.name == "t1"


def test_liveness_variable_and_scratch():
    g = make_graph({0: 8, 1: 8, 2: 4},
                   [([0, 2], [1], {"kernel": KernelChoice("plain", scratch_bytes=12)})], [0], [1], variables={2})
    bufs = buffers(g)
    var = [b for b in bufs if b.kind == "variable"]
    scr = [b for b in bufs if b.kind == "scratch"]
    assert [(b.tensors, b.first, b.last) for b in var] == [((2,), 0, 1)]
    assert [(b.op_index, b.size, b.first, b.last) for b in scr] == [(0, 12, 0, 0)]


def test_alias_of_constant_is_rejected():
    g = make_graph({0: 8, 1: 8, 2: 8}, [([1], [2], {"alias_of": 1, "kind": "RESHAPE"}), ([0, 2], [], {})],
                   [0], [0], consts={1})
    with pytest.raises(IRError, match="aliases constant"):
        buffers(g)


# ---- placement ---------------------------------------------------------------------------------------------
def test_reuse_of_dead_buffers_and_exact_arena():
    # the docstring example: %0 dies at step 0, %2 may take its bytes
    g = make_graph({0: 1000, 1: 2000, 2: 500}, [([0], [1], {}), ([1], [2], {})], [0], [2])
    h = planned(g)
    mp = h.memory_plan
    assert mp.arena_size == 3000
    assert mp.offsets[0] == mp.offsets[2] == 2000 and mp.offsets[1] == 0
    assert mp.strategy == "size_desc"
    assert plan_memory(g) == h  # deterministic


def test_alias_members_share_offset():
    g = make_graph({0: 8, 1: 16, 2: 16, 3: 16, 4: 4, 5: 4},
                   [([0], [1], {}), ([1], [2], {"alias_of": 1, "kind": "RESHAPE"}),
                    ([2], [3], {"alias_of": 2, "kind": "RESHAPE"}), ([3], [4], {}), ([1, 4], [5], {})],
                   [0], [5])
    mp = planned(g).memory_plan
    assert mp.offsets[1] == mp.offsets[2] == mp.offsets[3]
    # %4 is live while the group is (step 3..4): it must not sit inside the group's bytes
    assert not (mp.offsets[1] <= mp.offsets[4] < mp.offsets[1] + 16)


def test_alignment():
    g = make_graph({0: 3, 1: 5, 2: 7, 3: 1}, [([0], [1], {}), ([0, 1], [2], {}), ([2], [3], {})], [0], [3])
    for a in (1, 2, 4, 8, 16):
        mp = planned(g, alignment=a).memory_plan
        assert all(o % a == 0 for o in mp.offsets.values())
        assert mp.arena_size % a == 0 and mp.alignment == a
    with pytest.raises(IRError, match="power of two"):
        plan_memory(g, alignment=3)


def test_scratch_is_planned_and_reused():
    # op1 needs 64 B scratch; live at step 1 only, so it may reuse %0's bytes but not overlap %1/%2
    g = make_graph({0: 64, 1: 32, 2: 32, 3: 8},
                   [([0], [1], {}), ([1], [2], {"kernel": KernelChoice("plain", 64)}), ([2], [3], {})], [0], [3])
    mp = planned(g).memory_plan
    assert set(mp.scratch_offsets) == {1}
    s = mp.scratch_offsets[1]
    for t in (1, 2):
        assert s + 64 <= mp.offsets[t] or mp.offsets[t] + 32 <= s
    assert mp.arena_size == 64 + 32 + 32
    assert mp.offsets[0] == s  # %0 is dead at step 1: the scratch reuses its bytes


def test_variables_live_all_run():
    g = make_graph({0: 16, 1: 16, 2: 16, 3: 4},
                   [([0, 3], [1], {}), ([1, 3], [2], {})], [0], [2], variables={3})
    mp = planned(g).memory_plan
    v = mp.offsets[3]
    for t in (0, 1, 2):
        assert v + 4 <= mp.offsets[t] or mp.offsets[t] + 16 <= v


# ---- in-place ----------------------------------------------------------------------------------------------
def test_inplace_taken_when_legal():
    g = chain(3, 100, "inplace0")
    h = planned(g)
    mp = h.memory_plan
    assert mp.arena_size == 100
    assert dict(mp.inplace) == {1: 0, 2: 1, 3: 2}
    assert len(set(mp.offsets.values())) == 1
    assert "inplace" in mp.strategy
    assert "in-place over %0" in timeline(h)


def test_inplace_only_helps_and_not_for_plain_kernels():
    h = planned(chain(3, 100, "plain"))
    assert h.memory_plan.arena_size == 200 and not h.memory_plan.inplace
    assert "inplace" not in h.memory_plan.strategy


def test_inplace_not_when_input_lives_on():
    # %0 is read again by op1: op0 must not overwrite it
    g = make_graph({0: 100, 1: 100, 2: 100},
                   [([0], [1], {"kernel": KernelChoice("inplace0")}), ([0, 1], [2], {"kernel": KernelChoice("plain")})],
                   [0], [2])
    with fake_registry():
        assert [c.out_tid for c in inplace_candidates(g, buffers(g))] == []
    h = planned(g)
    assert not h.memory_plan.inplace and h.memory_plan.arena_size == 300  # all three live at step 1


def test_inplace_not_when_sizes_differ():
    g = make_graph({0: 100, 1: 96, 2: 8},
                   [([0], [1], {"kernel": KernelChoice("inplace0")}), ([1], [2], {})], [0], [2])
    h = planned(g)
    assert not h.memory_plan.inplace and h.memory_plan.arena_size == 196


def test_inplace_not_over_graph_output_variable_or_alias_kept_alive():
    # %1 is a graph output: op1 must not overwrite it
    g = make_graph({0: 100, 1: 100, 2: 100},
                   [([0], [1], {}), ([1], [2], {"kernel": KernelChoice("inplace0")})], [0], [1, 2])
    assert not planned(g).memory_plan.inplace
    # variable state must never be overwritten
    g = make_graph({0: 100, 1: 100, 2: 100},
                   [([2, 0], [1], {"kernel": KernelChoice("inplace0")})], [0], [1], variables={2})
    assert not planned(g).memory_plan.inplace
    # %1 has a view %2 that is read after op2: the group is still alive at op2
    g = make_graph({0: 8, 1: 100, 2: 100, 3: 100, 4: 8},
                   [([0], [1], {}), ([1], [2], {"alias_of": 1, "kind": "RESHAPE"}),
                    ([1], [3], {"kernel": KernelChoice("inplace0")}), ([2, 3], [4], {})], [0], [4])
    assert not planned(g).memory_plan.inplace


def test_inplace_not_when_another_input_reads_the_same_bytes():
    # op1 = f(%1, view(%1)) with a kernel that may overwrite input 0 only: the view would be clobbered
    g = make_graph({0: 4, 1: 100, 2: 100, 3: 100},
                   [([0], [1], {}), ([1], [2], {"alias_of": 1, "kind": "RESHAPE"}),
                    ([1, 2], [3], {"kernel": KernelChoice("inplace0")})], [0], [3])
    assert not planned(g).memory_plan.inplace
    # a kernel that may overwrite both positions (element-wise) may take it
    g2 = g.with_ops(g.ops[:2] + (dataclasses.replace(g.ops[2], kernel=KernelChoice("inplace01")),))
    assert dict(planned(g2).memory_plan.inplace) == {3: 1}


def test_inplace_second_input_position():
    # ADD(%a, %b) whose kernel allows overwriting either input; %a lives on, %b dies: take %b
    g = make_graph({0: 4, 1: 100, 2: 100, 3: 100, 4: 4},
                   [([0], [1], {}), ([0], [2], {}), ([1, 2], [3], {"kernel": KernelChoice("inplace01")}),
                    ([1, 3], [4], {})], [0], [4])
    h = planned(g)
    assert dict(h.memory_plan.inplace) == {3: 2}
    assert h.memory_plan.arena_size == 204  # without in-place: 300 at step 2


# ---- the checker -------------------------------------------------------------------------------------------
def _with_plan(h, **kw):
    return h.replace(memory_plan=dataclasses.replace(h.memory_plan, **kw))


def test_check_plan_catches_overlap_naming_both_tensors():
    g = make_graph({0: 16, 1: 16, 2: 16}, [([0], [1], {}), ([0, 1], [2], {})], [0], [2])
    h = planned(g)
    offs = dict(h.memory_plan.offsets)
    offs[1] = offs[0]
    bad = _with_plan(h, offsets=offs)
    with pytest.raises(IRError, match=r"%0 't0'.*%1 't1'.*steps 0 .*\.\. 1 ") as e:
        check_plan(bad)
    assert "overlap" in str(e.value)
    with pytest.raises(IRError):
        verify(bad)


def test_check_plan_catches_misalignment_bounds_missing_and_extras():
    g = make_graph({0: 16, 1: 16, 2: 16, 3: 4}, [([0, 3], [1], {}), ([1], [2], {})], [0], [2], consts={3})
    h = planned(g)
    mp = h.memory_plan
    with pytest.raises(IRError, match="not a multiple"):
        check_plan(_with_plan(h, offsets={**mp.offsets, 2: mp.offsets[2] + 2}))
    with pytest.raises(IRError, match="beyond the arena"):
        check_plan(_with_plan(h, arena_size=mp.arena_size - 4))
    with pytest.raises(IRError, match="has no offset"):
        check_plan(_with_plan(h, offsets={k: v for k, v in mp.offsets.items() if k != 1}))
    with pytest.raises(IRError, match="is a constant"):
        check_plan(_with_plan(h, offsets={**mp.offsets, 3: 0}))
    with pytest.raises(IRError, match="needs no scratch"):
        check_plan(_with_plan(h, scratch_offsets={0: 0}))


def test_check_plan_catches_alias_disagreement_and_missing_scratch():
    g = make_graph({0: 8, 1: 8, 2: 8}, [([0], [1], {"kernel": KernelChoice("plain", 8)}),
                                        ([1], [2], {"alias_of": 1, "kind": "RESHAPE"})], [0], [2])
    h = planned(g)
    mp = h.memory_plan
    with fake_registry():
        with pytest.raises(IRError, match="aliases but have different offsets"):
            check_plan(_with_plan(h, offsets={**mp.offsets, 2: mp.offsets[2] + 8}, arena_size=mp.arena_size + 16))
        with pytest.raises(IRError, match="scratch of op #0"):
            check_plan(_with_plan(h, scratch_offsets={}))


def test_check_plan_catches_illegal_inplace():
    # kernel 'plain' does not allow in-place: recording it (and overlapping) must fail
    g = chain(2, 100, "plain")
    h = planned(g)
    with fake_registry():
        bad = _with_plan(h, offsets={0: 0, 1: 0, 2: 100}, inplace={1: 0})
        with pytest.raises(IRError, match="not legal"):
            check_plan(bad)
        # the same overlap without the record is an overlap error
        with pytest.raises(IRError, match="overlap"):
            check_plan(_with_plan(h, offsets={0: 0, 1: 0, 2: 100}, inplace={}))
    # legal kernel but recorded pair at different offsets
    g = chain(2, 100, "inplace0")
    h = planned(g)
    with fake_registry():
        with pytest.raises(IRError, match="offsets differ"):
            check_plan(_with_plan(h, offsets={0: 0, 1: 100, 2: 0}, inplace={1: 0}, arena_size=200))


# ---- property tests ----------------------------------------------------------------------------------------
@st.composite
def random_graphs(draw):
    n_in = draw(st.integers(1, 2))
    sizes = {}
    live = []
    for t in range(n_in):
        sizes[t] = draw(st.integers(1, 300))
        live.append(t)
    variables = set()
    if draw(st.booleans()):
        v = len(sizes)
        sizes[v] = draw(st.integers(1, 64))
        variables.add(v)
    ops = []
    n_ops = draw(st.integers(1, 14))
    for _ in range(n_ops):
        ins = draw(st.lists(st.sampled_from(live), min_size=1, max_size=3, unique=True))
        if variables and draw(st.booleans()):
            ins.append(next(iter(variables)))
        kw = {}
        if draw(st.integers(0, 4)) == 0:  # a view of its first input
            out = len(sizes)
            sizes[out] = sizes[ins[0]]
            ops.append((ins[:1], [out], {"alias_of": ins[0], "kind": "RESHAPE"}))
            live.append(out)
            continue
        n_out = draw(st.integers(1, 2))
        outs = []
        for _ in range(n_out):
            out = len(sizes)
            same = draw(st.booleans())
            sizes[out] = sizes[ins[0]] if same else draw(st.integers(1, 300))
            outs.append(out)
        kernel = draw(st.sampled_from([None, "plain", "inplace0", "inplace01"]))
        scratch = draw(st.sampled_from([0, 0, 0, 4, 37, 128]))
        if kernel is not None or scratch:
            kw["kernel"] = KernelChoice(kernel or "plain", scratch)
        ops.append((ins, outs, kw))
        live.extend(outs)
    produced = [o for _, outs, _ in ops for o in outs]
    extra = draw(st.lists(st.sampled_from(produced), max_size=2, unique=True))
    outputs = list(dict.fromkeys([produced[-1]] + extra))
    return make_graph(sizes, ops, list(range(n_in)), outputs, variables=variables)


def _lower_bound(h: Graph) -> int:
    """Max over steps of live bytes, counting a recorded in-place pair once at its step."""
    bufs = buffers(h)
    per_step = live_bytes(bufs, len(h.ops))
    owner = buffer_of(bufs)
    for out_tid, in_tid in h.memory_plan.inplace.items():
        step = owner[out_tid].first
        per_step[step] -= owner[in_tid].size
    return max(per_step, default=0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=random_graphs(), alignment=st.sampled_from([1, 4, 8]))
def test_random_graphs_plan_is_valid_and_bounded(g, alignment):
    with fake_registry():
        h = plan_memory(g, alignment=alignment)
        verify(h)
        mp = h.memory_plan
        bufs = buffers(g)
        assert mp.arena_size >= _lower_bound(h)
        assert mp.arena_size <= sum(-(-b.size // alignment) * alignment for b in bufs)
        assert plan_memory(g, alignment=alignment) == h  # deterministic
        # in-place can only help: the same graph with no in-place kernels is never smaller
        no_inplace = g.with_ops(dataclasses.replace(op, kernel=dataclasses.replace(op.kernel, entry="plain"))
                                if op.kernel is not None else op for op in g.ops)
        h0 = plan_memory(no_inplace, alignment=alignment)
        assert not h0.memory_plan.inplace
        assert mp.arena_size <= h0.memory_plan.arena_size
        assert h0.memory_plan.arena_size >= peak_live_bytes(no_inplace)
        # every planned tensor has an offset, constants none
        assert set(mp.offsets) == {t for b in bufs for t in b.tensors}
        text = timeline(h)
        assert len(text.splitlines()) == 3 + len(bufs)  # header, ruler, buffers, the peak line


@settings(max_examples=200, deadline=None)
@given(g=random_graphs())
def test_random_corruption_is_caught(g):
    """Move one tensor buffer onto another one that is live at the same step: the checker must object."""
    with fake_registry():
        h = plan_memory(g)
        bufs = [b for b in buffers(g) if b.kind != "scratch"]
        mp = h.memory_plan
        owner = buffer_of(bufs)
        in_pairs = {owner[t].id for pair in mp.inplace.items() for t in pair}
        for a in bufs:
            for b in bufs:
                if a.id != b.id and a.overlaps_in_time(b) and a.id not in in_pairs and b.id not in in_pairs:
                    o = mp.offsets[a.tensors[0]]
                    offs = {**mp.offsets, **{t: o for t in b.tensors}}
                    bad = _with_plan(h, offsets=offs, arena_size=max(mp.arena_size, o + b.size + 8))
                    with pytest.raises(IRError, match="overlap"):
                        check_plan(bad)
                    return


def test_orderings_are_distinct():
    assert len({name for name, _ in ORDERINGS}) == len(ORDERINGS) >= 5


def test_timeline_bars():
    g = make_graph({0: 1000, 1: 2000, 2: 500}, [([0], [1], {}), ([1], [2], {})], [0], [2])
    text = timeline(planned(g))
    rows = {line.split()[0]: line for line in text.splitlines()[2:]}
    assert rows["%0"].split()[2:] == ["1000", "2000", "#.."]
    assert rows["%1"].split()[2:] == ["2000", "0", "##."]
    assert rows["%2"].split()[2:] == ["500", "2000", ".##"]
    assert "arena 3000 bytes" in text
    # also works before planning (liveness only)
    assert "peak live 3000 bytes" in timeline(g)


# ---- real models -------------------------------------------------------------------------------------------
def alias_reshapes(g: Graph) -> Graph:
    """Stand-in for passes.eliminate_reshapes: mark RESHAPE/SQUEEZE/EXPAND_DIMS outputs as views."""
    return g.with_ops(dataclasses.replace(op, alias_of=op.inputs[0])
                      if op.kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS") and op.alias_of is None else op
                      for op in g.ops)


def _model_files():
    if not MODELS.is_dir():
        return []
    return sorted(MODELS.glob("*.tflite"))


@pytest.mark.skipif(not MODELS.is_dir(), reason="../shared/models is missing")
@pytest.mark.parametrize("path", _model_files(), ids=lambda p: p.stem)
def test_models_plan_within_tflm(path):
    from specializer.frontend import load_model

    manifest = {m["file"]: m for m in json.loads((MODELS / "MANIFEST.json").read_text())["models"]}
    g = alias_reshapes(load_model(path, name=path.stem))
    h = plan_memory(g)
    verify(h)
    check_plan(h)
    arena = h.memory_plan.arena_size
    assert arena >= peak_live_bytes(h)
    assert arena <= manifest[path.name]["tflm_host_arena_bytes"]
    if BASELINES.is_file():
        base = json.loads(BASELINES.read_text())["results"].get(path.stem)
        if base is not None:
            assert arena <= base["tflm_cmsisnn"]["m4"]["arena_used_bytes"]
    assert path.stem in timeline(h)
