"""The typer application every stage module registers its command on."""

import typer

app = typer.Typer(
    name="cgen",
    help="Classifiers that generate images: the DVC stage commands and helpers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
