"""evaluate_plan: hand-derived and published checks of memory, MFU, the bubble and errors."""

from __future__ import annotations

import pytest

from chipforge.arch import load_chip
from chipforge.cluster import (
    Parallelism,
    TrainJob,
    evaluate_plan,
    model_flops_per_step,
    system,
)
from chipforge.errors import ClusterError
from chipforge.workloads import load_llm_config

GIB = 2**30
SEQ = 2048


def job(model: str, batch: int, dtype: str = "fp16") -> TrainJob:
    return TrainJob(load_llm_config(model), tokens=1e12, seq_len=SEQ, global_batch_seqs=batch,
                    dtype=dtype)


def run(model: str, batch: int, **plan: object):
    par = Parallelism(**plan)
    return evaluate_plan(job(model, batch), system("a100-sxm", par.chips), par)


def korthikanti(recompute: str, **plan: object) -> dict[str, object]:
    sp = recompute == "selective"
    return dict(tp=8, zero=0, recompute=recompute, sequence_parallel=sp,
                overlap_grad_reduce=False, **plan)


# source: Korthikanti et al. 2022 (arXiv 2205.05198) Fig. 1, per GPU, GiB (as Calculon's
# validation.py encodes them): "parameters and optimizer state" and activations for no
# recompute ("none") and sequence parallel + selective recompute ("seqsel")
FIG1 = {"megatron-gpt-22b": (45.5625, 59.25, 9.5625), "gpt3-175b": (45.5625, 66.84375, 12.3515625)}


def test_activation_memory_matches_korthikanti_fig1() -> None:
    plans = {"megatron-gpt-22b": (4, dict(micro_batch=4)),
             "gpt3-175b": (64, dict(pp=8, schedule="interleaved", virtual_stages=3))}
    for model, (batch, extra) in plans.items():
        _, none, seqsel = FIG1[model]
        plain = run(model, batch, **korthikanti("none", **extra))
        assert plain.memory["activations"] / GIB == pytest.approx(none, rel=0.005)
        sel = run(model, batch, **korthikanti("selective", **extra))
        assert sel.memory["activations"] / GIB == pytest.approx(seqsel, rel=0.005)


def test_parameter_memory_matches_korthikanti_fig1() -> None:
    # Fig. 1 counts the transformer layers' 18 bytes per parameter, not the embeddings
    cfg = load_llm_config("megatron-gpt-22b")
    est = run("megatron-gpt-22b", 4, **korthikanti("selective", micro_batch=4))
    states = est.memory["weights"] + est.memory["grads"] + est.memory["optimizer"]
    embedding = (cfg.vocab_size + SEQ) * cfg.hidden_size + 2 * cfg.hidden_size  # + final LN
    assert (states - embedding * 18 / 8) / GIB == pytest.approx(FIG1["megatron-gpt-22b"][0],
                                                                rel=0.002)


def test_zero_shards_optimizer_then_grads_then_weights() -> None:
    base = dict(tp=8, dp=4, micro_batch=1)
    parts = [run("megatron-gpt-7.5b", 32, zero=z, **base).memory for z in (0, 1, 2, 3)]
    assert parts[1]["optimizer"] == pytest.approx(parts[0]["optimizer"] / 4)
    assert parts[2]["grads"] == pytest.approx(parts[0]["grads"] / 4)
    assert parts[3]["weights"] == pytest.approx(parts[0]["weights"] / 4)
    assert parts[1]["grads"] == parts[0]["grads"]


def test_model_flops_is_korthikanti_formula() -> None:
    # 72 B s l h^2 (1 + s/(6h) + V/(12 h l)) per iteration (Korthikanti §6)
    cfg = load_llm_config("gpt3-175b")
    b, h, n, v = 64, cfg.hidden_size, cfg.num_layers, cfg.vocab_size
    formula = 72 * b * SEQ * n * h * h * (1 + SEQ / (6 * h) + v / (12 * h * n))
    assert model_flops_per_step(job("gpt3-175b", b)) == pytest.approx(formula, rel=1e-9)
    # source: Korthikanti Table 5: 13.75 s per iteration on 64 A100s is MFU 51.4%
    assert formula / (64 * 312e12 * 13.75) == pytest.approx(0.514, abs=0.001)


def test_mfu_hfu_arithmetic() -> None:
    est = run("gpt3-175b", 64, pp=8, **korthikanti("full"))
    peak = 64 * load_chip("a100-sxm").peak_flops("fp16") * est.step_time_s
    assert est.mfu == pytest.approx(est.model_flops / peak)
    assert est.hfu == pytest.approx(est.hardware_flops / peak)
    # full recompute re-runs the layers' forward: a third of their model FLOPs again
    assert 1.25 < est.hfu / est.mfu < 4 / 3


def test_breakdown_sums_to_step_and_bubble_fraction() -> None:
    # 1F1B bubble: (p - 1) / m of the steady-state time (Narayanan et al. 2021 §2.2.1)
    est = run("megatron-gpt-39b", 64, tp=8, pp=4, dp=1, zero=0)
    m, p = 64, 4
    assert sum(est.breakdown.values()) == pytest.approx(est.step_time_s)
    steady = sum(v for k, v in est.breakdown.items() if k.startswith(("compute", "tp_",
                                                                       "pp_p2p")))
    assert est.breakdown["pp_bubble"] / steady == pytest.approx((p - 1) / m, rel=0.1)
    inter = run("megatron-gpt-39b", 64, tp=8, pp=4, dp=1, zero=0, schedule="interleaved",
                virtual_stages=2)
    assert inter.breakdown["pp_bubble"] < 0.6 * est.breakdown["pp_bubble"]


def test_recompute_costs_time_and_saves_memory() -> None:
    plans = {rc: run("gpt3-175b", 64, pp=8, **korthikanti(rc)) for rc in
             ("none", "selective", "full")}
    assert plans["full"].step_time_s > plans["selective"].step_time_s
    assert plans["none"].memory["activations"] > plans["selective"].memory["activations"]
    assert plans["selective"].memory["activations"] > plans["full"].memory["activations"]
    assert plans["none"].breakdown["compute_recompute"] == 0.0


def test_no_tp_comm_without_tp_and_dp_overlap_hides_sync() -> None:
    plain = run("megatron-gpt-1.7b", 64, dp=8, zero=0, overlap_grad_reduce=False)
    assert plain.breakdown["tp_comm"] == 0.0 and plain.breakdown["dp_comm"] > 0
    hidden = run("megatron-gpt-1.7b", 64, dp=8, zero=0, overlap_grad_reduce=True)
    assert hidden.breakdown["dp_comm"] < plain.breakdown["dp_comm"]


def test_too_big_plan_does_not_fit_and_says_so() -> None:
    est = run("gpt3-175b", 8, tp=8)
    assert not est.fits and est.note.startswith("does not fit")


@pytest.mark.parametrize(("plan", "batch", "match"), [
    (dict(tp=7, dp=1), 7, "tp=7 does not divide num_heads"),
    (dict(tp=8, pp=8, schedule="interleaved", virtual_stages=16), 64, "exceeds num_layers"),
    (dict(tp=8, dp=2), 3, "global_batch_seqs=3"),
    (dict(tp=8, ep=2, dp=2), 4, "ep=2 for the dense model"),
])
def test_impossible_plans_raise(plan: dict, batch: int, match: str) -> None:
    with pytest.raises(ClusterError, match=match):
        run("gpt3-175b", batch, **plan)


def test_plan_must_use_the_systems_chips() -> None:
    with pytest.raises(ClusterError, match="expected the system's 16"):
        evaluate_plan(job("gpt3-175b", 8), system("a100-sxm", 16), Parallelism(tp=8))


def test_llama_405b_plan_evaluates() -> None:
    cfg = load_llm_config("llama-3.1-405b")
    par = Parallelism(tp=8, pp=9, dp=2, micro_batch=1, schedule="interleaved",
                      virtual_stages=2, recompute="selective", sequence_parallel=True)
    est = evaluate_plan(TrainJob(cfg, 15e12, 8192, 36, "bf16"), system("h100-sxm", 144), par)
    assert 0.2 < est.mfu < 0.7 and est.step_time_s > 0


def test_expert_parallelism_shards_experts_and_adds_all_to_all() -> None:
    cfg = load_llm_config("mixtral-8x7b")
    job8k = TrainJob(cfg, 1e12, 4096, 64, "bf16")

    def plan(ep: int):
        par = Parallelism(tp=2, dp=8, ep=ep, recompute="selective", sequence_parallel=True)
        return evaluate_plan(job8k, system("h100-sxm", 16), par)

    one, eight = plan(1), plan(8)
    # hand count: each rank keeps attention, norms, router, embeddings, and 1/ep of experts
    experts = cfg.moe_layers * cfg.num_experts * cfg.mlp_params(cfg.moe_intermediate_size)
    expected = (cfg.param_count() - experts * 7 / 8) * 2 / 2  # 2 B weights over tp 2
    assert eight.memory["weights"] == pytest.approx(expected, rel=1e-6)
    assert one.memory["weights"] == pytest.approx(cfg.param_count(), rel=1e-6)
    assert one.breakdown["ep_all_to_all"] == 0 < eight.breakdown["ep_all_to_all"]


def test_context_parallelism_splits_activations() -> None:
    cfg = load_llm_config("llama-3.1-8b")
    job = TrainJob(cfg, 1e12, 16384, 16, "bf16")
    runs = [evaluate_plan(job, system("h100-sxm", 16),
                          Parallelism(tp=8, cp=cp, dp=2 // cp, sequence_parallel=True))
            for cp in (1, 2)]
    assert runs[1].memory["activations"] == pytest.approx(runs[0].memory["activations"] / 2)
    assert runs[0].breakdown["cp_comm"] == 0.0


def test_bad_inputs_raise_one_clear_error() -> None:
    with pytest.raises(ClusterError, match="expected a System"):
        evaluate_plan(job("gpt3-175b", 8), "a100-sxm", Parallelism(tp=8))  # type: ignore[arg-type]
    with pytest.raises(ClusterError, match="learned positions"):
        TrainJob(load_llm_config("gpt3-175b"), 1e12, 4096, 8)
    with pytest.raises(ClusterError, match="tokens=inf"):
        TrainJob(load_llm_config("gpt3-175b"), float("inf"), 2048, 8)
    with pytest.raises(ClusterError, match="schedule='zb'"):
        Parallelism(schedule="zb")
