"""Stage `ladder`: the generation test's calibration. The held-out real images degraded step by
step (pipeline.ladder: blur, noise, pixel shuffles at rising strength), each rung measured exactly
as a sample set is (pipeline.evaluation, both judges and the classification accuracy score), and
a figure of one image per class and rung."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline import metrics as M
from pipeline.data import load_image_set
from pipeline.evaluation import evaluate_samples, real_as_samples
from pipeline.figures import save_overview
from pipeline.ladder import LadderConfig, degrade
from pipeline.models import ModelConfig
from pipeline.panels import class_rows
from pipeline.runtime import derive_seed
from pipeline.samples import SampleSet
from stages.evaluate import measuring
from stages.skeleton import (
    PARAMS_DEFAULT,
    MetricsOut,
    Params,
    TestData,
    TrainData,
    stage,
    write_metrics,
)

SECTIONS = {
    "eval.metrics": M.EvalConfig,
    "eval.ladder": LadderConfig,
    "judge.model": ModelConfig,
    "judge_b.model": ModelConfig,
}
# what each rung keeps of a sample set's metrics: the numbers the generation test reads
KEPT = (M.JUDGE_FID, M.JUDGE_FID_LO, M.JUDGE_FID_HI, M.DISCRIMINABILITY, "judge_b_fid",
        "judge_b_fid_lo", "judge_b_fid_hi", "judge_b_discriminability", M.PRECISION, M.RECALL,
        M.CAS, M.CAS_TEST_IMAGES, M.NUM_HARD)  # fmt: skip
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    train: TrainData,
    test: TestData,
    judge: Annotated[Path, typer.Option("--judge", help="judge checkpoint")],
    judge_b: Annotated[Path, typer.Option("--judge-b", help="second judge checkpoint")],
    metrics: MetricsOut,
    figure: Annotated[Path, typer.Option("--figure", help="PNG of the rungs")],
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Measure every rung of the calibration ladder."""
    with stage("ladder", params, SECTIONS) as st:
        cfg: M.EvalConfig = st.cfg["eval.metrics"]
        ladder: LadderConfig = st.cfg["eval.ladder"]
        train_set, test_set = load_image_set(train), load_image_set(test)
        judges, cas_model = measuring(st, judge, judge_b, train_set)
        real = real_as_samples(test_set)
        drawn = real.subset(M.cap(len(real), cfg.count(len(test_set)), cfg.seed))  # as evaluated
        rungs, shown = {}, [("real", class_rows(drawn, 1)[0])]
        for name, kind, strength in ladder.rungs():
            images = degrade(test_set.images, kind, strength, derive_seed(cfg.seed, "ladder", name))
            rung = SampleSet(images, real.targets, name, real.class_names)
            result = evaluate_samples(rung, train_set, test_set, judges, cfg, st.device,
                                      cas_model, of_test=True)  # fmt: skip
            rungs[name] = {"kind": kind, "strength": strength,
                           **{k: result.metrics.get(k) for k in KEPT}}  # fmt: skip
            shown.append((name, class_rows(result.hard, 1)[0]))
            st.run.log_metrics({f"{name}_{k}": v for k, v in rungs[name].items()
                                if isinstance(v, float)})  # fmt: skip
        save_overview(shown, figure, "The calibration ladder: one held-out image per class")
        write_metrics(metrics, {"rungs": rungs})
        st.run.log_artifact(figure, "figures")
    typer.echo(f"ladder: {len(rungs)} rungs -> {metrics}")
