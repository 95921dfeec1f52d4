"""`cgen`: one command per DVC stage (exactly what dvc.yaml calls) plus helpers.

Commands are imported only when they run: `cgen --help` imports none of them (no torch, MLflow or
torch-fidelity), and a stage pays only for the modules its own command imports. User errors
(bad parameters, missing files, non-finite numbers) become one line on stderr and exit code 2
(parameters) or 1 (other input), before any work whenever they can be known then.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import sys
from pathlib import Path

from pipeline.errors import ConfigError  # light: no torch
from pipeline.methods import METHODS, Command  # light: names and strings, no method loaded

# The pipeline's own commands; each generation method's come from its registry entry
# (pipeline.methods). command -> (module whose `app` runs it, one-line summary for `cgen --help`)
CORE: dict[str, Command] = {
    "code-hashes": Command("stages.code_hashes",
                           "the code stage: SHA-256 of the modules each stage command runs"),
    "prepare": Command("stages.prepare", "write the fixed train/test split of data.name"),
    "check": Command("stages.check", "the parameter gate: validate params.yaml against the data"),
    "classifier": Command("stages.classifier",
                          "train a classifier on real data (judge, judge_b, r0)", True),
    "null-sampler": Command("stages.null_sampler",
                            "a null-sampler reference set (a method's sampler, flat)", True),
    "real-mixup": Command("stages.real_mixup", "the real pixel-mixup reference set"),
    "evaluate": Command("stages.evaluate", "evaluate one sample set (or the real-data floor)"),
    "ladder": Command("stages.ladder", "the generation test's calibration: degraded real images"),
    "report": Command("stages.report", "write the report (Markdown + self-contained HTML)"),
}  # fmt: skip
HELPER_COMMANDS: dict[str, Command] = {
    "params": Command("stages.params_cmd",
                      "check parameters, apply profiles, write STIC round chains"),
    "seeds": Command("stages.seeds", "queue the pipeline for several seeds as DVC experiments"),
    "compare": Command("stages.compare", "the across-seed report from DVC experiments"),
    "sweep": Command("stages.sweep",
                     "queue a grid of settings as DVC experiments, or print its table"),
    "track": Command("stages.track", "flush spooled runs into MLflow"),
    "bench": Command("stages.bench",
                     "benchmark samplers, training and evaluation against naive loops"),
    "where": Command("stages.where", "where the results and the MLflow runs are"),
    "repro": Command("stages.repro", "dvc repro with the run's progress (stage k of N, elapsed)"),
    "sample": Command("stages.sample_cmd",
                      "draw samples of chosen classes from a trained model of the pipeline"),
    "machine": Command("stages.machine", "does this machine compute the committed numbers?"),
    "dvc-deps": Command("stages.dvc_deps",
                        "check or write dvc.yaml's module deps from the imports"),
    "forecast": Command("stages.forecast", "a profile's GPU hours before anyone runs it"),
}  # fmt: skip
# Helpers that drive DVC, MLflow or git: they keep Python's normal exit and its atexit handlers
HELPERS = set(HELPER_COMMANDS)
ALL: dict[str, Command] = {
    **CORE,
    **{name: c for m in METHODS for name, c in m.commands.items()},
    **HELPER_COMMANDS,
}
COMMANDS: dict[str, tuple[str, str]] = {name: (c.module, c.summary) for name, c in ALL.items()}
# Commands that run data-parallel under torchrun when runtime.processes * runtime.nodes > 1
PARALLEL = {name for name, c in ALL.items() if c.parallel}


def runtime_section(rest: list[str]) -> dict:
    """The `runtime` section of the command's parameter file (`--params`, else params.yaml), read
    as plain YAML before anything heavy is imported; {} when there is none. The strict check of
    its keys is the `check` stage's and the stage's own; here, an absent key means its default."""
    params = Path(rest[rest.index("--params") + 1]) if "--params" in rest else Path("params.yaml")
    if not params.is_file():
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(params.read_text()) or {}
    except yaml.YAMLError:
        return {}  # the stage's own loader reports it, naming the file
    runtime = loaded.get("runtime") if isinstance(loaded, dict) else None
    if not isinstance(runtime, dict):
        return {}
    # what is read here decides the launch, before the strict check: checked here too
    for key in ("processes", "nodes"):
        value = runtime.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{params}: runtime.{key}: expected an integer >= 1, got {value!r}")
    if runtime.get("numerics", "portable") not in ("portable", "native"):
        raise ConfigError(
            f"{params}: runtime.numerics: must be one of 'portable' | 'native', "
            f"got {runtime['numerics']!r}"
        )
    return runtime


def torchrun_args(name: str, rest: list[str], runtime: dict | None = None) -> list[str] | None:
    """The torchrun launch of `cgen NAME REST` when its `runtime` section (read from the
    parameter file when not given) asks for more than one process, else None (also inside
    torchrun, which sets RANK)."""
    if name not in PARALLEL or "RANK" in os.environ:
        return None
    runtime = runtime_section(rest) if runtime is None else runtime
    procs, nodes = runtime.get("processes", 1), runtime.get("nodes", 1)
    if procs * nodes == 1:
        return None
    launch = ["-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--nnodes", str(nodes)]
    if nodes == 1:
        return [*launch, "--standalone"]
    job = hashlib.sha256(" ".join([name, *rest]).encode()).hexdigest()[:16]  # same on every node
    rdzv = ["--rdzv-backend", "c10d", "--rdzv-endpoint", str(runtime.get("rendezvous"))]
    return [*launch, *rdzv, "--rdzv-id", job]


def remove_stale_outputs(rest: list[str]) -> None:
    """Before a stage runs: the temporary files a killed run of it left beside the paths its
    command names (pipeline.io: outputs are written through a temporary file and a rename)."""
    from pipeline.io import remove_stale_temps

    for value in rest:
        if not value.startswith("-") and "/" in value:
            for stale in remove_stale_temps(Path(value)):
                logging.getLogger(__name__).info("removed %s, left by a killed run", stale)


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "Usage: cgen COMMAND [OPTIONS]   (cgen COMMAND --help for its options)",
        "",
        "Classifiers that generate images: the DVC stage commands and helpers.",
        "",
        "Commands:",
    ]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("alembic", "mlflow", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: no command '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        runtime = runtime_section(rest)
    except ConfigError as exc:
        if name not in HELPERS:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        runtime = {}  # a helper (`cgen params apply`, say) may be what repairs the file
    from pipeline import numerics

    # before torch or numpy load: the pins are read when the libraries start (pipeline.numerics)
    numerics.apply("native" if runtime.get("numerics") == "native" else "portable")
    setup_logging()
    if name not in HELPERS and "RANK" not in os.environ:  # once, before any rank starts
        remove_stale_outputs(rest)
    launch = torchrun_args(name, rest, runtime)
    if launch is not None:  # the same command, once per rank, under torchrun
        os.execv(sys.executable, [sys.executable, *launch, "-m", "stages", name, *rest])
    from pipeline.errors import exit_code

    module = importlib.import_module(COMMANDS[name][0])
    import click

    try:
        # a command that raises typer.Exit(code) returns the code here (click, standalone off)
        code = module.app(rest, prog_name=f"cgen {name}", standalone_mode=False)
    except click.exceptions.Exit as exc:  # raised past click (standalone off returns it)
        return exc.exit_code
    except click.ClickException as exc:  # a usage error: a missing or malformed option
        exc.show()
        return exc.exit_code
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return code
    return code if type(code) is int else 0  # a bool or any other value is no exit code


def run() -> None:
    """Console-script entry point. A stage that returned has written and closed its outputs (and
    spooled its run): it skips the interpreter's teardown, 0.45 s with torch and matplotlib
    loaded, a quarter of a stage's fixed cost here."""
    code = main()
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS and sys.argv[1] not in HELPERS:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
