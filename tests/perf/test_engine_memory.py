"""``estimate`` checks a workload against the chip's memory: it splits an LLM that does not
fit (the smallest tensor-parallel group), or says it does not fit and how many chips it
needs, and reports throughput as items over seconds."""

from __future__ import annotations

import pytest

from chipforge.arch import load_chip
from chipforge.errors import WorkloadError
from chipforge.ops import GraphBuilder, matmul
from chipforge.perf import estimate
from chipforge.workloads import (
    USABLE_MEMORY_FRACTION,
    get_workload,
    llm_decode,
    llm_train_step,
    load_llm_config,
    memory_footprint,
)

CFG70 = load_llm_config("llama-3.1-70b")
# weights 70,553,706,496 x 2 B + KV 2 x 80 x 8 x 128 x 4096 x 64 x 2 B = 227.0 GB
NEED_70B_B64_C4096 = 70_553_706_496 * 2 + 2 * 80 * 8 * 128 * 4096 * 64 * 2


def test_the_readme_70b_decode_on_one_h20_is_split_to_the_smallest_group_that_fits():
    """One 96 GB H20 has 86.4 GB usable: tp 2 needs 113.5 GB a chip, tp 4 56.8 GB."""
    graph = llm_decode(CFG70, 64, 4096)
    est = estimate(graph, "h20")
    assert (est.fits, est.tp, est.pp, est.chips, est.needs_chips) == (True, 4, 1, 4, 4)
    assert est.parallelism == "tp=4"
    usable = 96e9 * USABLE_MEMORY_FRACTION
    assert est.memory_bytes <= usable < memory_footprint(graph, tp=2).total_bytes
    assert est.note.startswith("does not fit 1 chip (227.0 GB); split to fit: 4 chips")
    # the same numbers as the tp=4 graph estimated as built
    as_built = estimate(llm_decode(CFG70, 64, 4096, tp=4), "h20", parallel=None)
    assert est.seconds == as_built.seconds and est.hbm_bytes == as_built.hbm_bytes
    assert est.memory_bytes == as_built.memory_bytes and as_built.fits
    # throughput: the group's 64 tokens per step, a quarter of it per chip
    assert est.items == 64 and est.item_unit == "tokens"
    assert est.items_per_s == pytest.approx(64 / est.seconds, rel=1e-12)
    assert est.tokens_per_s == est.items_per_s and est.samples_per_s is None
    assert est.items_per_s_per_chip == pytest.approx(16 / est.seconds, rel=1e-12)


def test_without_a_split_it_says_it_does_not_fit_and_how_many_chips_it_needs():
    est = estimate(llm_decode(CFG70, 64, 4096), "h20", parallel=None)
    assert not est.fits and est.chips == 1 and est.needs_chips == 4
    assert est.memory_bytes == pytest.approx(NEED_70B_B64_C4096, rel=1e-3)
    assert est.note.startswith("does not fit: needs >= 4 chips (tp=4: 56.8 GB per chip); "
                               "227.0 GB per chip on 1 chip")
    assert "86.4 GB usable (90% of 96 GB on h20)" in est.note
    assert est.hbm_bytes > 96e9  # the README's 231 GB of traffic per step, now flagged


def test_a_workload_that_fits_stays_on_one_chip():
    """Llama-3.1-8B decode, batch 32, context 2048: 16.06 GB + 8.59 GB + 16.7 MB of
    logits and residual, well within an 80 GB H100."""
    est = estimate(llm_decode(load_llm_config("llama-3.1-8b"), 32, 2048), "h100-sxm")
    assert (est.fits, est.chips, est.needs_chips) == (True, 1, 1)
    assert est.memory_bytes == (8_030_261_248 * 2 + 2 * 32 * 8 * 128 * 2048 * 32 * 2
                                + 32 * 128256 * 4 + 32 * 4096 * 2)
    assert est.memory.kv_cache_bytes == 8_589_934_592
    assert est.items_per_s == pytest.approx(32 / est.seconds, rel=1e-12)


def test_training_that_does_not_fit_names_the_split_but_is_not_split():
    """8B training, 150 GB on one chip: the tp=4 split fits an H100, but the split step is
    not modelled, so the estimate stays one chip's and says it does not fit."""
    graph = llm_train_step(load_llm_config("llama-3.1-8b"), 8, 4096, micro_batch=1)
    est = estimate(graph, "h100-sxm")
    assert (est.fits, est.chips, est.needs_chips) == (False, 1, 4)
    assert est.seconds == estimate(graph, "h100-sxm", parallel=None).seconds
    assert "does not fit: needs >= 4 chips (tp=4" in est.note
    assert est.items_per_s == pytest.approx(8 * 4096 / est.seconds, rel=1e-12)
    # a 192 GB B200 (172.8 GB usable) holds it
    assert estimate(graph, "b200").fits
    with pytest.raises(WorkloadError, match="parallel=2"):
        estimate(graph, "h100-sxm", parallel=2)


def test_an_explicit_tensor_parallel_size_and_bad_values():
    est = estimate(llm_decode(CFG70, 64, 4096), "h100-sxm", parallel=8)
    assert est.tp == 8 and est.fits
    assert est.seconds == estimate(llm_decode(CFG70, 64, 4096, tp=8), "h100-sxm").seconds
    two = estimate(llm_decode(CFG70, 64, 4096), "h100-sxm", parallel=2)
    assert two.tp == 2 and not two.fits and two.needs_chips == 4
    for bad in (3, 0, -1, True, "4", 2.0):
        with pytest.raises(WorkloadError, match="parallel="):
            estimate(llm_decode(CFG70, 64, 4096), "h100-sxm", parallel=bad)


def test_the_single_op_path_is_unchanged_apart_from_its_operands():
    op = matmul(4096, 4096, 4096)
    est = estimate(op, "h100-sxm")
    in_graph = estimate(GraphBuilder("g").add(op).build(), "h100-sxm").breakdown[0]
    assert (est.seconds, est.flops, est.hbm_bytes, est.mapping) == (
        in_graph.seconds, in_graph.flops, in_graph.hbm_bytes, in_graph.mapping)
    assert est.memory_bytes == op.bytes == 3 * 4096 * 4096 * 2
    assert est.fits and est.items == 0 and est.note == ""
    huge = matmul(1 << 18, 1 << 18, 1 << 10)  # a 137 GB output
    big = estimate(huge, "h100-sxm")
    assert not big.fits and big.note.startswith("does not fit: the operands take")
    assert big.needs_chips == -(-huge.bytes // (80e9 * USABLE_MEMORY_FRACTION))


def test_a_graph_without_a_memory_model_reports_a_lower_bound():
    g = GraphBuilder("hand").add(matmul(4096, 4096, 4096), 3).build(items=7)
    est = estimate(g, "h100-sxm")
    assert est.memory_bytes == 3 * 4096 * 4096 * 2 and est.fits
    assert "the graph carries no memory model" in est.note
    assert est.items_per_s == pytest.approx(7 / est.seconds, rel=1e-12)
    with pytest.raises(WorkloadError, match="no memory model"):
        estimate(g, "h100-sxm", parallel=2)


def test_the_serving_sizing_in_cost_picks_the_same_group():
    from chipforge.cost import tensor_parallel_size

    for chip in ("h20", "h100-sxm", "h200-sxm", "forge-t1"):
        est = estimate(get_workload("llama3.1-70b-decode").graph, chip)
        assert est.tp == tensor_parallel_size(load_chip(chip), CFG70, 64, 4096), chip
