"""A design point equal to forge-i1 is forge-i1; its metrics match evaluating the catalog
chip directly with hand-derived tensor-parallel groups; constraints match hand-derived
feasibility; the memory table matches the catalog's shipped parts."""

from __future__ import annotations

import pytest
from dse_fixtures import write

from chipforge.arch import load_chip
from chipforge.cost import die_area, export_class, unit_cost, workload_power
from chipforge.dse import (
    MEMORY_TECHS,
    EvalContext,
    Store,
    design_chip,
    evaluate_point,
    load_problem,
    run_dse,
)
from chipforge.dse._evaluate import check_constraints
from chipforge.workloads import llm_decode, load_llm_config

FORGE_I1_SPACE = """\
name: i1-equal
base: forge-i1
dtype_sets:
  i1: {int8: 1, fp8_e4m3: 1, fp8_e5m2: 1, bf16: 0.5, fp16: 0.5}
params:
  array_rows: 32
  array_cols: 64
  cores: 32
  matrix_units_per_core: 1
  clock_ghz: 1.5
  local_sram_mib: 4
  global_sram_mib: 16
  memory: [{kind: GDDR7, stacks: 16, capacity_per_stack_gb: 2}]
  links: 16
  dtypes: i1
  tdp_w: 150
  process_node: N4
objectives: [serving_tokens_per_s_per_usd]
"""
POINT = {"array_rows": 32, "array_cols": 64, "cores": 32, "matrix_units_per_core": 1,
         "clock_ghz": 1.5, "local_sram_mib": 4.0, "global_sram_mib": 16.0,
         "memory": "GDDR7 x16 2GB", "links": 16, "dtypes": "i1", "tdp_w": 150.0,
         "process_node": "N4"}
# fields a design point sets itself: its name, and no stated die area or price (modelled)
OWN = {"name", "description", "die_area", "launch_price"}


def test_forge_i1_point_is_forge_i1(tmp_path):
    problem = load_problem(write(tmp_path, "space.yaml", FORGE_I1_SPACE))
    chip = design_chip(problem.space, problem.base_chip, POINT)
    i1 = load_chip("forge-i1")
    ours = {k: v for k, v in chip.model_dump(by_alias=True).items() if k not in OWN}
    assert ours == {k: v for k, v in i1.model_dump(by_alias=True).items() if k not in OWN}
    assert chip.die_area_mm2 is None and chip.sources["clock"].startswith("assumption: ")


def test_point_overrides_another_base(tmp_path):
    # from forge-t1, every searched field takes forge-i1's value (the rest stays forge-t1's)
    problem = load_problem(write(tmp_path, "space.yaml", FORGE_I1_SPACE))
    chip = design_chip(problem.space, load_chip("forge-t1"), POINT)
    i1 = load_chip("forge-i1")
    assert (chip.clock_hz, chip.tdp_w, chip.process_node, chip.cores.count) == (
        i1.clock_hz, i1.tdp_w, i1.process_node, i1.cores.count)
    assert chip.cores.matrix_units[0] == i1.cores.matrix_units[0]
    assert chip.cores.local_sram.size_bytes == i1.cores.local_sram.size_bytes
    assert chip.shared_buffer.size_bytes == i1.shared_buffer.size_bytes
    assert chip.memory == i1.memory and chip.links.count == i1.links.count
    # 32 cores x 32 x 64 cells: int8 one MAC per cell, bf16 half, no fp32
    assert [chip.macs_per_cycle(d) for d in ("int8", "bf16", "fp32")] == [65536, 32768, 0]


def test_forge_i1_point_metrics_match_the_catalog_chip(tmp_path):
    problem = load_problem(write(tmp_path, "space.yaml", FORGE_I1_SPACE))
    ev = evaluate_point(EvalContext(problem), POINT)
    # neither the point nor the catalog chip states a die area (the silicon model gives it)
    i1 = load_chip("forge-i1")
    assert i1.die_area_mm2 is None
    # hand-derived groups, 32 GB x 0.9 = 28.8 GB usable per chip, fp8 weights and KV:
    # 70B, batch 64, context 4096: 70.55e9 + 64*4096*2*80*8*128 = 113.5e9, 56.7e9 a chip on
    # 2, 28.4e9 on 4 (8 KV heads split 4 ways): tp=4; 8B, batch 32, context 2048: 8.03e9 +
    # 32*2048*2*32*8*128 = 12.3e9 fits one chip
    m70 = workload_power(i1, llm_decode(load_llm_config("llama-3.1-70b"), 64, 4096,
                                        "fp8_e4m3", tp=4))
    m8 = workload_power(i1, llm_decode(load_llm_config("llama-3.1-8b"), 32, 2048, "fp8_e4m3"))
    rate70, rate8 = 64 / 4 / m70.estimate.seconds, 32 / m8.estimate.seconds  # per chip
    m = ev.metrics
    assert m["llama-3.1-70b_b64_c4096_tp"] == 4 and m["llama-3.1-8b_b32_c2048_tp"] == 1
    assert m["llama-3.1-70b_b64_c4096_tokens_per_s"] == pytest.approx(rate70, rel=1e-12)
    assert m["llama-3.1-8b_b32_c2048_tokens_per_s"] == pytest.approx(rate8, rel=1e-12)
    mix = 2 / (1 / rate70 + 1 / rate8)  # equal shares of tokens: the harmonic mean
    assert m["serving_tokens_per_s"] == pytest.approx(mix, rel=1e-12)
    assert m["unit_cost_usd"] == pytest.approx(unit_cost(i1).total_usd, rel=1e-12)
    assert ev.objective_values == [pytest.approx(mix / unit_cost(i1).total_usd, rel=1e-12)]
    assert m["die_area_mm2"] == pytest.approx(die_area(i1).total_mm2, rel=1e-12)
    assert m["power_w"] == pytest.approx(max(m70.avg_power_w, m8.avg_power_w), rel=1e-12)
    # TPP by hand: 2 x 32 cores x 2048 MACs x 1.5 GHz x 8 bits = 1572.864
    assert m["tpp"] == pytest.approx(1572.864, rel=1e-12)
    assert m["tpp"] == pytest.approx(export_class(i1).tpp, rel=1e-12)
    # the point has no stated die area, so PD uses the modelled logic area
    assert m["pd"] == pytest.approx(1572.864 / die_area(i1).logic_mm2, rel=1e-12)
    assert m["export_tier"] == "not controlled" and ev.feasible


def test_serving_groups_follow_the_problem_memory_fraction_and_tp_cap(tmp_path):
    # forge-i1 (32 GB), fp8: 70B at batch 64, context 4096 holds 70.55e9 + 42.9e9 =
    # 113.5e9, 28.4e9 a chip on four, 14.2e9 on eight; with half the memory usable (16 GB)
    # it takes 8 chips, and a cap of 1 leaves it without a group. 8B at batch 32, context
    # 2048: 8.03e9 + 4.3e9 = 12.3e9 fits one chip either way.
    from chipforge.dse import chip_metrics

    i1 = load_chip("forge-i1")
    half = _problem_with(tmp_path, "workloads: {memory_usable_fraction: 0.5}\n")
    m = chip_metrics(i1, half, frozenset({"serving"}))
    assert m["llama-3.1-70b_b64_c4096_tp"] == 8 and m["llama-3.1-8b_b32_c2048_tp"] == 1
    assert m["memory_fits"]
    capped = _problem_with(tmp_path, "workloads: {memory_usable_fraction: 0.5, max_tp: 1}\n")
    m = chip_metrics(i1, capped, frozenset({"serving"}))
    assert m["llama-3.1-70b_b64_c4096_tp"] == 0 and m["llama-3.1-8b_b32_c2048_tp"] == 1
    assert not m["memory_fits"]
    assert m["memory_note"] == "Llama-3.1-70B batch 64 context 4096 does not fit 1 chips"


def _metrics(**over):
    base = {"die_area_mm2": 500.0, "tdp_w": 300.0, "power_w": 250.0,
            "export_tier": "not controlled", "unit_cost_usd": 2000.0, "memory_fits": True}
    return {**base, **over}


def _problem_with(tmp_path, constraints: str):
    """forge-i1's point space with ``constraints`` (YAML text) as its constraints file."""
    space = write(tmp_path, "space.yaml", FORGE_I1_SPACE.replace(
        "objectives: [serving_tokens_per_s_per_usd]\n", ""))
    return load_problem(space, write(tmp_path, "c.yaml", constraints))


def test_constraints_hand_derived(tmp_path):
    problem = _problem_with(tmp_path, "constraints: {max_die_area_mm2: 600, max_power_w: 200, "
                            "max_export_tier: 3A090.b, max_unit_cost_usd: 2500}\n")
    assert check_constraints(_metrics(power_w=150.0), problem)[0] == []
    broken, values = check_constraints(_metrics(), problem)  # 250 W > the 200 W bound
    assert broken == ["power 250 W > 200 W"] and values[1] == 50.0
    broken, _ = check_constraints(_metrics(die_area_mm2=601.0, power_w=310.0,
                                           export_tier="3A090.a", unit_cost_usd=2600.0,
                                           memory_fits=False, memory_note="no room"), problem)
    assert broken == ["die area 601 mm2 > 600 mm2", "power 310 W > 200 W",
                      "export tier 3A090.a beyond 3A090.b", "memory: no room",
                      "unit cost $2600 > $2500"]
    assert check_constraints(_metrics(export_tier="3A090.b", power_w=100.0), problem)[0] == []


def _tier(tpp: float, pd: float) -> str:
    """ECCN 3A090 (Oct 2023 rule), written out independently of chipforge.cost."""
    if tpp >= 4800 or (tpp >= 1600 and pd >= 5.92):
        return "3A090.a"
    if (2400 <= tpp < 4800 and 1.6 <= pd < 5.92) or (tpp >= 1600 and 3.2 <= pd < 5.92):
        return "3A090.b"
    return "not controlled"


# 3 x 2 x 2 x 2 = 24 points that land in all three tiers and on both sides of the cost bound
GRID = """\
name: feas
base: forge-i1
params:
  cores: {choices: [8, 44, 60]}
  clock_ghz: {choices: [1.0, 1.5]}
  global_sram_mib: {choices: [256, 1024]}
  memory: [{kind: HBM3e, stacks: {choices: [2, 3]}, capacity_per_stack_gb: 24}]
objectives: [serving_tokens_per_s_per_usd]
constraints: {max_export_tier: not controlled, max_unit_cost_usd: 2600}
"""


def test_stored_feasibility_matches_hand_rules(tmp_path):
    out = tmp_path / "run"
    run_dse(load_problem(write(tmp_path, "space.yaml", GRID)), out, sampler="grid", workers=1)
    store = Store(out / "results.sqlite")
    rows = store.rows()
    store.close()
    assert len(rows) == 24
    for r in rows:
        m, p = r.metrics, r.params
        # TPP by hand from the point: 2 x cores x 2048 int8 MACs x clock x 8 bits
        assert m["tpp"] == pytest.approx(2 * p["cores"] * 2048 * p["clock_ghz"] * 8 / 1e3)
        expected = (_tier(m["tpp"], m["pd"]) == "not controlled"
                    and m["unit_cost_usd"] <= 2600 and m["die_area_mm2"] <= 858
                    and m["power_w"] <= m["tdp_w"] * (1 + 1e-9) and m["memory_fits"])
        assert r.feasible == expected, (p, m)
    assert {r.feasible for r in rows} == {True, False}  # the bounds bite both ways
    assert {r.metrics["export_tier"] for r in rows} == {"not controlled", "3A090.b", "3A090.a"}


def test_memory_table_matches_shipped_parts():
    # per-stack figures = catalog totals / stacks (H100 HBM3, B200 HBM3e)
    for chip_name, kind in (("h100-sxm", "HBM3"), ("b200", "HBM3e")):
        mem = load_chip(chip_name).memory
        tech = MEMORY_TECHS[kind]
        assert tech.bandwidth_per_stack_bytes_per_s == pytest.approx(
            mem.bandwidth_bytes_per_s / mem.stacks, rel=0.001)
        assert mem.capacity_bytes / mem.stacks in tech.capacities_per_stack_bytes
    # LPDDR5X x64 at 8533 MT/s: 8533e6 transfers x 8 bytes
    assert MEMORY_TECHS["LPDDR5X"].bandwidth_per_stack_bytes_per_s == pytest.approx(
        8533e6 * 8, rel=0.001)


def test_a_failing_model_is_stored_not_fatal(tmp_path, monkeypatch):
    import chipforge.dse._evaluate as evaluate

    def broken(chip, problem, groups):
        if chip.cores.count == 4:
            raise ZeroDivisionError("float division by zero")
        return real(chip, problem, groups)

    real = evaluate.chip_metrics
    monkeypatch.setattr(evaluate, "chip_metrics", broken)
    space = write(tmp_path, "space.yaml", GRID.replace("[8, 44, 60]", "[2, 4]").replace(
        "{choices: [256, 1024]}", "256"))
    summary = run_dse(load_problem(space), tmp_path / "run", sampler="grid", workers=1)
    # 2 cores x 2 clocks x 2 memories: the four 4-core points fail, the rest are evaluated
    assert (summary.evaluated, summary.failed) == (8, 4)
    assert summary.first_error == "internal error: ZeroDivisionError: float division by zero"
    store = Store(tmp_path / "run" / "results.sqlite")
    failed = [r.params["cores"] for r in store.rows() if r.objective_values is None]
    store.close()
    assert failed == [4, 4, 4, 4]


def test_serving_tco_objective_is_the_token_weighted_mean_of_llm_serving_tco():
    # independent path: chipforge.cost.llm_serving_tco picks its own tensor-parallel group
    # (tensor_parallel_size) and builds its own decode graph; the mix's $ per million tokens
    # is the token-share weighted mean (equal weights in designs/forge-i1)
    from pathlib import Path

    from chipforge.cost import llm_serving_tco
    from chipforge.dse import chip_metrics, load_problem
    from chipforge.workloads import load_llm_config

    design = Path(__file__).resolve().parents[2] / "designs" / "forge-i1"
    problem = load_problem(design / "space.yaml", design / "constraints.yaml")
    h20 = load_chip("h20")
    m = chip_metrics(h20, problem, frozenset({"serving"}))
    parts = [llm_serving_tco(h20, load_llm_config(w.model), w.batch, w.context_len,
                             m["serving_dtype"]).usd_per_million_tokens
             for w in problem.settings.workloads.serving]
    assert m["serving_usd_per_million_tokens"] == pytest.approx(sum(parts) / len(parts))


def test_export_pd_margin(tmp_path):
    # TPP 2261, PD 3.07: uncontrolled as modelled (PD < 3.2), but 3.07 x 1.1 = 3.38 >= 3.2
    # puts it in 3A090.b by the hand rule above, so a 10% margin rejects it
    problem = _problem_with(tmp_path, "constraints: {max_export_tier: not controlled, "
                            "export_pd_margin: 0.1}\n")
    m = _metrics(tpp=2261.0, pd=3.07)
    assert _tier(2261.0, 3.07 * 1.1) == "3A090.b"
    broken, values = check_constraints(m, problem)
    assert broken == ["export tier 3A090.b beyond not controlled (at PD 3.07 x 1.1 margin)"]
    assert values[2] == 1.0
    assert check_constraints(_metrics(tpp=2261.0, pd=2.9), problem)[0] == []
