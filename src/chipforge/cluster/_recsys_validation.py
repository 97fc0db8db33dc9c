"""Validation of the DLRM training model against MLPerf Training v3.0 DLRM-DCNv2 results.

What is compared: the closed-division benchmark (Criteo 1TB multi-hot: 26 tables of
dim 128 with the multi-hot sizes of ``MLPERF_DCNV2_HOTNESS``, bottom MLP 512-256-128, DCNv2
3 layers of rank 512, top MLP 1024-1024-512-256-1, Adagrad, trained to AUC 0.80275). The
time to train is ``run_stop − run_start`` in each MLPerf log: the training steps and the
evaluations (one pass over the 89,137,319 eval samples every 0.05 epoch), not the
initialization. The score is the mean of the 10 runs without the fastest and the slowest.

Each run stops at its own epoch (0.75 to 1.0 of the 4,195,197,692 training samples), which
its log records; the model uses each run's logged epoch and evaluation count, so only the
time per sample is modelled. Fitted to nothing here: these rows are a hold-out."""

from __future__ import annotations

import math
from dataclasses import dataclass

from chipforge.cluster._recsys_model import DLRMSpec, dlrm_spec
from chipforge.cluster._recsys_step import dlrm_step, dlrm_train_plan, plan_for
from chipforge.cluster._system import system as make_system

# source: MLPerf v3.0 HugeCTR train.py TRAIN_NUM_SAMPLES / EVAL_NUM_SAMPLES (and the logs'
# train_samples / eval_samples)
TRAIN_SAMPLES = 4_195_197_692
EVAL_SAMPLES = 89_137_319
SOURCE = "mlcommons/training_results_v3.0 (commit 63e326c)"


@dataclass(frozen=True)
class MLPerfResult:
    """One submission: its system, batch sizes and per-run (time to train s, epochs at
    run_stop, evaluations, seconds inside eval_start..eval_stop) from the logs."""

    label: str
    chip: str
    chips: int
    global_batch: int
    eval_batch: int
    eval_batch_note: str
    source: str
    runs: tuple[tuple[float, float, int, float], ...]

    @property
    def score_s(self) -> float:
        return olympic_mean([r[0] for r in self.runs])

    @property
    def train_samples_per_s(self) -> float:
        """Measured training throughput: samples trained over the time outside evals."""
        samples = sum(r[1] * TRAIN_SAMPLES for r in self.runs)
        return samples / sum(r[0] - r[3] for r in self.runs)


def olympic_mean(values: list[float]) -> float:
    """MLPerf Training scoring: drop the fastest and slowest run, average the rest."""
    ordered = sorted(values)
    return sum(ordered[1:-1]) / (len(ordered) - 2)


# source: mlcommons/training_results_v3.0, */results/*/dlrm_dcnv2/result_{0..9}.txt (MLLOG
# run_start/run_stop, eval_start/eval_stop and run_stop epoch_num); batch sizes from the
# logs' global_batch_size and the configs' BATCHSIZE_EVAL
MLPERF_V30 = (
    MLPerfResult(
        "1x NVIDIA DGX H100 (8 H100-SXM)", "h100-sxm", 8, 55296, 262144,
        "assumption: 262144, the BATCHSIZE_EVAL of the v3.0 8-GPU H100 and A100 HugeCTR "
        "configs (Dell XE9680); NVIDIA's config_DGXH100_1x8x6912.sh is not in the repo",
        f"{SOURCE} NVIDIA/results/dgxh100_ngc23.04_merlin_hugectr",
        ((246.381, 0.7499, 15, 29.549), (246.921, 0.7499, 15, 29.867),
         (246.416, 0.7499, 15, 29.552), (247.229, 0.7499, 15, 29.888),
         (246.282, 0.7499, 15, 29.523), (297.332, 0.8999, 18, 36.025),
         (280.896, 0.8499, 17, 33.868), (246.220, 0.7499, 15, 29.440),
         (247.438, 0.7499, 15, 30.018), (246.628, 0.7499, 15, 29.689))),
    MLPerfResult(
        "Dell XE9680 (8 A100-SXM-80GB)", "a100-sxm", 8, 55296, 262144,
        "source: Dell config_XE9680x8A100-SXM-80GB.sh BATCHSIZE_EVAL=262144",
        f"{SOURCE} Dell/results/XE9680x8A100-SXM-80GB",
        ((525.671, 0.7999, 16, 91.026), (591.024, 0.8999, 18, 102.381),
         (491.721, 0.7499, 15, 85.397), (492.721, 0.7499, 15, 85.391),
         (558.023, 0.8499, 17, 96.752), (491.816, 0.7499, 15, 85.418),
         (492.352, 0.7499, 15, 85.341), (492.216, 0.7499, 15, 85.513),
         (492.353, 0.7499, 15, 85.395), (492.424, 0.7499, 15, 85.463))),
    MLPerfResult(
        "8x NVIDIA DGX H100 (64 H100-SXM)", "h100-sxm", 64, 135168, 1048576,
        "source: NVIDIA config_DGXH100_8x8x2112.sh BATCHSIZE_EVAL=1048576",
        f"{SOURCE} NVIDIA/results/dgxh100_n8_ngc23.04_merlin_hugectr",
        ((105.399, 0.9494, 19, 18.218), (106.154, 0.9494, 19, 18.331),
         (100.943, 0.8995, 18, 17.329), (99.842, 0.8995, 18, 17.230),
         (107.607, 0.9494, 19, 18.213), (112.714, 0.9994, 20, 19.332),
         (106.482, 0.9494, 19, 18.320), (105.200, 0.9494, 19, 18.175),
         (105.679, 0.9494, 19, 18.309), (107.350, 0.9494, 19, 18.324))),
    MLPerfResult(
        "16x NVIDIA DGX H100 (128 H100-SXM)", "h100-sxm", 128, 135168, 1048576,
        "assumption: 1048576 as the 8-node config (config_DGXH100_16x8x1056.sh is not in "
        "the repo)",
        f"{SOURCE} NVIDIA/results/dgxh100_n16_ngc23.04_merlin_hugectr",
        ((104.487, 0.9994, 20, 13.039), (99.162, 0.9494, 19, 12.515),
         (93.389, 0.8995, 18, 11.751), (99.556, 0.9494, 19, 12.524),
         (93.769, 0.8995, 18, 11.810), (99.369, 0.9494, 19, 12.542),
         (96.399, 0.8995, 18, 11.882), (93.846, 0.8995, 18, 11.795),
         (98.610, 0.9494, 19, 12.537), (92.754, 0.8995, 18, 11.810))),
)


def _spec() -> DLRMSpec:
    # source: the HugeCTR submissions run Adagrad with an fp32 accumulator per element
    # (hugectr.Optimizer_t.AdaGrad, Update_t.Global), not the reference's row-wise variant
    return dlrm_spec("mlperf-dlrm-dcnv2", optimizer="adagrad")


def _row(result: MLPerfResult) -> dict[str, object]:
    spec = _spec()
    plan = dlrm_train_plan(spec, result.chip, chips=result.chips,
                           global_batch=result.global_batch)
    sys = make_system(result.chip, result.chips)
    eval_plan, _ = plan_for(spec, sys, result.eval_batch, train=False)
    eval_step_s = dlrm_step(spec, sys, eval_plan, result.eval_batch, train=False).step_s
    eval_pass_s = math.ceil(EVAL_SAMPLES / result.eval_batch) * eval_step_s
    modelled = [epochs * TRAIN_SAMPLES / plan.samples_per_s + evals * eval_pass_s
                for _, epochs, evals, _ in result.runs]
    measured_eval_s = sum(r[3] / r[2] for r in result.runs) / len(result.runs)
    return {
        "system": result.label, "chip": result.chip, "chips": result.chips,
        "global_batch": result.global_batch, "eval_batch": result.eval_batch,
        "measured_samples_per_s": result.train_samples_per_s,
        "modelled_samples_per_s": plan.samples_per_s,
        "throughput_error": plan.samples_per_s / result.train_samples_per_s - 1,
        "measured_eval_pass_s": measured_eval_s, "modelled_eval_pass_s": eval_pass_s,
        "measured_ttt_min": result.score_s / 60, "modelled_ttt_min": olympic_mean(modelled) / 60,
        "ttt_error": olympic_mean(modelled) / result.score_s - 1,
        "step_ms": plan.step_time_s * 1e3, "sharding": _kinds(plan.sharding.kinds),
        "memory_gb": plan.memory_per_chip_bytes / 1e9,
        "eval_batch_note": result.eval_batch_note, "source": result.source,
    }


def _kinds(kinds: tuple[str, ...]) -> str:
    counts = {k: kinds.count(k) for k in dict.fromkeys(kinds)}
    return ", ".join(f"{n} {k}" for k, n in counts.items())


def recsys_validation() -> list[dict[str, object]]:
    """Each MLPerf v3.0 DLRM-DCNv2 submission above, measured against modelled: training
    throughput (samples/s outside evals) and the time-to-train score."""
    return [_row(r) for r in MLPERF_V30]


def recsys_validation_markdown() -> str:
    """The rows as a Markdown table for docs/validation.md."""
    lines = ["| system | batch | sharding | measured Msamples/s | modelled | error | "
             "measured TTT min | modelled | error |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in recsys_validation():
        lines.append(
            f"| {r['system']} | {r['global_batch']} | {r['sharding']} | "
            f"{r['measured_samples_per_s'] / 1e6:.2f} | {r['modelled_samples_per_s'] / 1e6:.2f}"
            f" | {r['throughput_error']:+.0%} | {r['measured_ttt_min']:.2f} | "
            f"{r['modelled_ttt_min']:.2f} | {r['ttt_error']:+.0%} |")
    lines.append("")
    lines.append(f"Source: {SOURCE}, the MLLOG result files of each submission; time to train "
                 "is run_stop − run_start (training and evaluations), scored as the mean of "
                 "10 runs without the fastest and slowest; each run's logged epochs and "
                 "evaluation count are used. Measured throughput excludes the evaluations.")
    return "\n".join(lines)
