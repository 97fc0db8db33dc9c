"""Bad space and constraint files: one clear error (file, field path, value, expected),
raised by load_problem and printed by the CLI with exit status 2 before any work."""

from __future__ import annotations

import subprocess

import pytest
from dse_fixtures import TINY_CONSTRAINTS, TINY_SPACE, write

from chipforge.dse import DseError, load_problem
from chipforge.workloads import llm_config_names
from clitools import chipforge_exe


def _space_error(tmp_path, text: str) -> str:
    path = write(tmp_path, "space.yaml", text)
    with pytest.raises(DseError) as info:
        load_problem(path)
    return str(info.value).replace(str(tmp_path) + "/", "")


def test_empty_choices(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE.replace("[2, 4]", "[]"))
    assert msg == ("space.yaml: params.cores: got {'choices': []}; expected at least one "
                   "choice (empty range)")


def test_min_above_max(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE.replace("{choices: [2, 4]}", "{min: 8, max: 4}"))
    assert msg == ("space.yaml: params.cores: got {'min': 8, 'max': 4}; expected min <= max "
                   "(empty range)")


def test_unknown_memory_kind(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE.replace("kind: GDDR7", "kind: HBM4"))
    assert msg == ("space.yaml: params.memory[0].kind: got 'HBM4'; expected one of HBM2e, "
                   "HBM3, HBM3e, LPDDR5, LPDDR5X, GDDR6, GDDR7, DDR5")


def test_capacity_not_in_the_table(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE.replace("capacity_per_stack_gb: 3",
                                                    "capacity_per_stack_gb: 4"))
    assert msg == ("space.yaml: params.memory[0].capacity_per_stack_gb: got 4.0; expected one "
                   "of 2, 3 for GDDR7 (the sourced table in chipforge/cost/_memory.py)")


def test_unknown_field(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE + "  voltage: {choices: [0.8]}\n")
    assert msg == ("space.yaml: params.voltage: unknown field (value {'choices': [0.8]}); "
                   "expected a field listed in docs/dse.md")


def test_wrong_type(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE.replace("{choices: [2, 4]}",
                                                    "{min: two, max: 4}"))
    assert msg == "space.yaml: params.cores.min: got 'two'; expected an integer"


def test_float_where_an_integer_is_needed(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE.replace("[2, 4]", "[2, 4.5]"))
    assert msg == "space.yaml: params.cores.choices[1]: got 4.5; expected an integer"


def test_unknown_process_node(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE + "  process_node: {choices: [N5, N8]}\n")
    assert msg == ("space.yaml: params.process_node.choices[1]: got 'N8'; expected one of "
                   "N16, N12, N7, N6, N5, 4N, N4, 4NP, N3, N2, SMIC-N+2")


def test_unknown_dtype_set(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE + "  dtypes: fp8-only\n")
    assert msg == ("space.yaml: params.dtypes.choices[0]: got 'fp8-only'; "
                   "expected one of the dtype_sets: (none: add a dtype_sets mapping)")


def test_yaml_syntax_error(tmp_path):
    msg = _space_error(tmp_path, "name: x\nparams: {cores: [1, 2}\n")
    assert msg == "space.yaml: YAML syntax error at line 2, column 22: expected ',' or ']', " \
                  "but got '}'"


def test_empty_file(tmp_path):
    msg = _space_error(tmp_path, "")
    assert msg == "space.yaml: the file is empty; expected a mapping of design space fields"


def test_missing_base(tmp_path):
    msg = _space_error(tmp_path, TINY_SPACE.replace("base: forge-i1\n", ""))
    assert msg == "space.yaml: base: missing required field; expected it (see docs/dse.md)"


def _constraints_error(tmp_path, text: str) -> str:
    space = write(tmp_path, "space.yaml", TINY_SPACE)
    path = write(tmp_path, "c.yaml", text)
    with pytest.raises(DseError) as info:
        load_problem(space, path)
    return str(info.value).replace(str(tmp_path) + "/", "")


def test_unknown_objective(tmp_path):
    msg = _constraints_error(tmp_path, "objectives: [tokens_per_dollar]\n")
    assert msg.startswith("c.yaml: objectives[0]: got 'tokens_per_dollar'; "
                          "expected one of serving_tokens_per_s_per_usd, "
                          "serving_usd_per_million_tokens, serving_tokens_per_s,")


def test_unknown_export_tier(tmp_path):
    msg = _constraints_error(tmp_path, "constraints: {max_export_tier: 3A090.c}\n")
    assert msg == ("c.yaml: constraints.max_export_tier: got '3A090.c'; expected one of "
                   "'not controlled', '3A090.b' or '3A090.a'")


def test_negative_bound(tmp_path):
    msg = _constraints_error(tmp_path, "constraints: {max_unit_cost_usd: -5}\n")
    assert msg == "c.yaml: constraints.max_unit_cost_usd: got -5; expected a positive number"


def test_unknown_serving_model(tmp_path):
    msg = _constraints_error(
        tmp_path, "workloads:\n  serving: [{model: gpt-5, batch: 1, context_len: 128}]\n")
    assert msg == ("c.yaml: workloads.serving[0].model: got 'gpt-5'; expected one of "
                   + ", ".join(llm_config_names()))  # the shipped configs, sorted


def test_section_in_both_files(tmp_path):
    space = write(tmp_path, "space.yaml", TINY_SPACE + "objectives: [power_w]\n")
    path = write(tmp_path, "c.yaml", TINY_CONSTRAINTS)
    with pytest.raises(DseError) as info:
        load_problem(space, path)
    assert str(info.value) == (f"{path}: objectives: given in both {space} and {path}; "
                               "expected it in one file")


def test_cli_prints_one_error_line_and_does_no_work(tmp_path):
    space = write(tmp_path, "space.yaml", TINY_SPACE.replace("kind: GDDR7", "kind: HBM4"))
    out = tmp_path / "run"
    proc = subprocess.run([chipforge_exe(), "dse", "run", str(space), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == (f"error: {space}: params.memory[0].kind: got 'HBM4'; expected one "
                           "of HBM2e, HBM3, HBM3e, LPDDR5, LPDDR5X, GDDR6, GDDR7, DDR5\n")
    assert not out.exists()  # nothing started


def test_grid_needs_a_step(tmp_path):
    from chipforge.dse import run_dse

    space = write(tmp_path, "space.yaml",
                  TINY_SPACE.replace("{choices: [1.0, 1.5]}", "{min: 1.0, max: 1.5}"))
    with pytest.raises(DseError) as info:
        run_dse(load_problem(space), tmp_path / "run", sampler="grid", workers=1)
    assert str(info.value) == (f"{space}: params.clock_ghz: a continuous range (no step) "
                               "cannot be enumerated by a grid; expected a step or choices")
    assert not (tmp_path / "run").exists()


def test_export_margin_out_of_range(tmp_path):
    msg = _constraints_error(tmp_path, "constraints: {export_pd_margin: 1.5}\n")
    assert msg == "c.yaml: constraints.export_pd_margin: got 1.5; input should be less than 1"
