"""Stage `real_mixup`: pixel mixes of two held-out real images of two classes, the reference for
every method's soft samples (interpolation error, pair mass; pipeline.references)."""

from __future__ import annotations

import typer

from pipeline.data import load_image_set
from pipeline.references import REAL_MIXUP, RealMixupConfig, real_mixup
from stages.outputs import SampleOutputs, write_samples
from stages.skeleton import (
    PARAMS_DEFAULT,
    FigureOut,
    MetricsOut,
    Params,
    SamplesOut,
    TestData,
    stage,
)

SECTIONS = {"references.real_mixup": RealMixupConfig}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    test: TestData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Mix held-out real images."""
    with stage(REAL_MIXUP, params, SECTIONS, tags={"method": REAL_MIXUP}) as st:
        samples = real_mixup(
            load_image_set(test), st.cfg["references.real_mixup"], st.generator(REAL_MIXUP)
        )
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            samples,
            {"passes_per_sample": 0},
            title="real pixel-mixup of held-out images (soft samples only)",
        )
