"""Stage `report`: reports/report.md, a self-contained reports/report.html and the headline
metrics reports/summary.json (the file `dvc exp show` lists), from the evaluation results of
exactly the rounds and sample sets params.yaml lists (never a folder glob). File names come from
patterns in dvc.yaml's cmd, `{name}` standing for a set's name (`real`: the floor)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline import claims as C
from pipeline import methods
from pipeline import metrics as M
from pipeline import report as R
from pipeline.claim_rows import claims as all_claims
from pipeline.claim_rows import label as method_label
from pipeline.config import Overrides
from pipeline.data import load_image_set
from pipeline.errors import DataError
from pipeline.evaluation import real_as_samples
from pipeline.figures import save_method_comparison, save_overview, save_round_panels
from pipeline.io import atomic_write_json, atomic_write_text
from pipeline.methods import METHODS
from pipeline.methods.registry import CONFIGS
from pipeline.methods.stic import BASE_ROUND, RoundConfig, chain_rounds, depth
from pipeline.panels import class_rows
from pipeline.samples import load_samples
from stages.skeleton import PARAMS_DEFAULT, Params, TestData, stage

SECTIONS = {
    "data.name": str,
    "eval.methods": tuple[str, ...],
    "references.nulls": Overrides,
    # every method's section: which method makes which set (its label, its null sampler)
    **{m.name: CONFIGS[m.name] for m in METHODS},
}
REFERENCE_LABELS = {
    "real_mixup": "real pixel-mixup (reference)",
    "real": "real data (floor: test vs train)",
}
HEADLINE = ("stic", *(m.name for m in METHODS if m.name != "stic"), "real")
Pattern = Annotated[str, typer.Option(help="a path pattern with {name}")]


def label(name: str) -> str:
    """A sample set's row label in the report and the across-seed report."""
    return REFERENCE_LABELS.get(name) or method_label(name) or name


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _read(path: Path, required: bool = True) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise DataError(f"{path}: not found; run `dvc repro` so the stage that writes it runs")
        return {}
    return json.loads(path.read_text())


@app.command()
def main(
    eval_pattern: Annotated[str, typer.Option("--eval", help="evaluation JSON pattern")],
    sampling: Pattern,
    train_metrics: Pattern,
    grid: Pattern,
    strips: Pattern,
    neighbours: Pattern,
    drawing: Pattern,
    samples: Pattern,
    test: TestData,
    data_facts: Annotated[Path, typer.Option("--data-facts", help="prepare's facts JSON")],
    ladder: Annotated[Path, typer.Option("--ladder", help="the calibration ladder's JSON")],
    ladder_figure: Annotated[Path, typer.Option("--ladder-figure", help="its figure")],
    rounds_figure: Annotated[Path, typer.Option("--rounds-figure")],
    methods_figure: Annotated[Path, typer.Option("--methods-figure")],
    overview_figure: Annotated[Path, typer.Option("--overview-figure")],
    rounds_data: Annotated[Path, typer.Option("--rounds-data", help="round metrics TSV")],
    md: Annotated[Path, typer.Option("--md")],
    html_out: Annotated[Path, typer.Option("--html")],
    summary: Annotated[Path, typer.Option("--summary", help="headline metrics JSON")],
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Write the report, its figures and the headline metrics."""
    patterns = {"eval": eval_pattern, "sampling": sampling, "train": train_metrics, "grid": grid,
                "strips": strips, "neighbours": neighbours, "drawing": drawing,
                "samples": samples}  # fmt: skip
    for kind, pattern in patterns.items():
        if "{name}" not in pattern:
            raise DataError(f"--{kind.replace('_', '-')}: pattern {pattern!r} lacks {{name}}")
    with stage("report", params, SECTIONS) as st:

        def path(kind: str, name: str) -> Path:
            return Path(patterns[kind].format(name=name))

        rounds: dict[str, RoundConfig] = st.cfg["stic"].rounds
        made_by = methods.makers(st.cfg)
        chain = chain_rounds(rounds)
        refs = {*st.cfg["references.nulls"], "real_mixup"}

        def row(name: str, group: R.Group, label: str) -> R.Row:
            metrics = _read(path("eval", name))
            figures = [(path("grid", name), "hard samples"),
                       (path("neighbours", name), "nearest training images")]  # fmt: skip
            if metrics.get("num_soft_samples"):
                figures.append((path("strips", name), "soft samples"))
            if path("drawing", name).is_file() and name.startswith("attentive"):
                figures.append((path("drawing", name), "drawing sequence"))
            sampler = {} if name == "real" else _read(path("sampling", name), required=False)
            if name in rounds:
                sampler = {**sampler, "prev": rounds[name].prev}
            return R.Row(name, group, label, metrics, sampler, tuple(figures))

        rows = [row(r, "round", f"STIC {r}") for r in chain]
        rows += [row(r, "ablation", f"{r} (from {rounds[r].prev}, depth {depth(rounds, r)})")
                 for r in rounds if r not in chain]  # fmt: skip
        if chain:
            last = rows[len(chain) - 1]
            rows.append(R.Row("stic", "method", f"STIC ({last.name}, the last round)", last.eval,
                              last.sampling, ()))  # fmt: skip
        for name in st.cfg["eval.methods"]:
            group = "reference" if name in refs else "method"
            rows.append(row(name, group, label(name)))
        rows.append(row("real", "real", label("real")))

        by_name = {r.name: r for r in rows}
        facts = _read(data_facts)
        r0_acc = _read(path("train", BASE_ROUND)).get("test_accuracy")
        by_name["r0"] = R.Row("r0", "round", "r0", {}, {"classifier_test_accuracy": r0_acc})
        nulls = st.cfg["references.nulls"]  # null set -> the method whose sampler it runs
        rungs = _read(ladder)["rungs"]
        ceiling = by_name["real"].eval.get(M.CAS)
        floors = {j: C.class_floor(list(rungs.values()), ceiling, facts["classes"], j)
                  for j in C.JUDGES}  # fmt: skip
        gen = {
            j: R.generation(
                by_name,
                lambda name: methods.null_of(name, made_by, nulls),
                facts["classes"],
                j,
                floors[j],
            )  # fmt: skip
            for j in C.JUDGES
        }
        results = C.judge_claims(
            all_claims(chain, {}),
            R.claim_lookup(by_name, facts["test_images"]),
            lambda judge, name: gen[judge](name),
        )
        shown = [r for r in rows if r.name != "r0"]
        k = facts["classes"]
        chance = C.chance_interval(k, int(by_name["real"].eval.get(M.EVAL_COUNT) or 0))
        panels = R.round_panels(by_name, chain, r0_acc, facts["test_images"],
                                methods.null_of("stic", made_by, nulls), chance)  # fmt: skip
        save_round_panels(["r0", *chain], panels, rounds_figure,
                          "STIC's rounds: fresh chains, 95% intervals")  # fmt: skip
        atomic_write_text(rounds_data, R.rounds_tsv(by_name, chain))
        save_method_comparison(R.method_marks(shown), (1 / k, *chance), methods_figure,
                               "Every sample set against the references")  # fmt: skip

        def samples_of(r: R.Row) -> Path:  # the STIC row is its last round's set
            return path("samples", chain[-1] if r.name == "stic" else r.name)

        overview = [
            (textwrap.fill(r.label, 26), class_rows(load_samples(samples_of(r)), 1)[0])
            for r in shown
            if r.group == "method" and samples_of(r).is_file()
        ]
        real_digits = real_as_samples(load_image_set(test))
        overview.append((textwrap.fill(label("real"), 26), class_rows(real_digits, 1)[0]))
        save_overview(overview, overview_figure, "One hard sample per class of each set")
        blocks = R.report_blocks(
            dataset=st.cfg["data.name"], rows=shown, chain=chain, r0_accuracy=r0_acc,
            test_images=facts["test_images"], claim_results=results,
            figures=R.Figures(methods_figure, rounds_figure, overview_figure, ladder_figure),
            ladder=rungs, floors=floors,
            generating=gen, data_files=facts.get("files"),
        )  # fmt: skip
        atomic_write_text(md, R.render_markdown(blocks, md.parent))
        atomic_write_text(
            html_out, R.render_html(blocks, lambda p: Path(p).read_bytes(), html_out.parent)
        )
        atomic_write_json(summary, R.summary(rows, HEADLINE))
        verdicts = {r.claim.id: r.verdict for r in results}
        st.run.log_metrics({f"claim_{k}": {"reproduced": 1, "not reproduced": -1}.get(v, 0)
                            for k, v in verdicts.items()})  # fmt: skip
        for p in (md, html_out):
            st.run.log_artifact(p, "report")
    typer.echo(f"report: {md} and {html_out} ({len(chain)} rounds, {len(rows)} rows)")
