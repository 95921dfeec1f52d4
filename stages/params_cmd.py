"""`cgen params`: check the parameter file, apply a named profile, print a profile as `dvc exp
run -S` flags, and write a chain of STIC rounds. Edits keep every comment and the layout of
params.yaml (a round-trip YAML editor) and are validated before anything is written."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import merge, read_yaml
from pipeline.errors import ConfigError
from pipeline.io import atomic_write_text
from pipeline.params import load_params, parse_params
from stages.skeleton import PARAMS_DEFAULT, Params

app = typer.Typer(
    help="Check parameters, apply profiles, write STIC round chains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
Profiles = Annotated[Path, typer.Option("--profiles-dir", help="folder of profiles")]
PROFILES = Path("profiles")


def _yaml():
    from ruamel.yaml import YAML

    y = YAML()  # round-trip: comments, order and layout are kept
    y.preserve_quotes = True
    y.width = 100
    return y


def _deep_update(node, changes: Mapping) -> None:
    """Merge `changes` into a round-trip YAML mapping in place (mappings merge, values replace)."""
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(node.get(key), Mapping):
            _deep_update(node[key], value)
        else:
            node[key] = value


def edit(
    path: Path, merge_in: Mapping | None = None, replace: tuple[str, object] | None = None
) -> str:
    """params.yaml's text with `merge_in` deep-merged into it, or the section at dotted key
    replace[0] replaced by replace[1]; every comment elsewhere kept. Validated before returned."""
    import yaml as plain

    from pipeline.config import Loader

    y = _yaml()
    doc = y.load(Path(path).read_text())
    if merge_in:
        _deep_update(doc, merge_in)
    if replace is not None:
        *parents, last = replace[0].split(".")
        node = doc
        for part in parents:
            node = node[part]
        node[last] = replace[1]
    out = io.StringIO()
    y.dump(doc, out)
    text = out.getvalue()
    parse_params(plain.load(text, Loader=Loader))
    return text


def profile_of(name: str, profiles_dir: Path) -> dict:
    path = profiles_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in profiles_dir.glob("*.yaml"))
        raise ConfigError(
            f"profile '{name}' not found in {profiles_dir}/; known: {', '.join(known)}"
        )
    return read_yaml(path)


def leaves(data: Mapping, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out += leaves(value, name) if isinstance(value, Mapping) and value else [(name, value)]
    return out


@app.command("check")
def check(params: Params = PARAMS_DEFAULT) -> None:
    """Validate a parameter file without running anything."""
    load_params(params)
    typer.echo(f"{params}: ok")


@app.command("apply")
def apply(
    name: Annotated[str, typer.Argument(help="profile name, e.g. cifar10_wrn")],
    params: Params = PARAMS_DEFAULT,
    profiles_dir: Profiles = PROFILES,
) -> None:
    """Merge a named profile into the parameter file, keeping its comments."""
    atomic_write_text(params, edit(params, profile_of(name, profiles_dir)))
    typer.echo(f"{params}: profile '{name}' applied; run `dvc repro` (or `make repro`)")


@app.command("overrides")
def overrides(
    name: Annotated[str, typer.Argument(help="profile name")],
    params: Params = PARAMS_DEFAULT,
    profiles_dir: Profiles = PROFILES,
) -> None:
    """Print a profile as `-S key=value` flags for `dvc exp run` (validated first)."""
    profile = profile_of(name, profiles_dir)
    parse_params(merge(read_yaml(params), profile))
    flags = [f"-S '{k}={v if isinstance(v, str) else json.dumps(v)}'" for k, v in leaves(profile)]
    typer.echo(" ".join(flags))


@app.command("rounds")
def rounds(
    n: Annotated[int, typer.Argument(help="rounds in the main STIC chain after r0")],
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Write the chain r1..rN into stic.rounds, keeping the chain rounds' own overrides, every
    branch (ablation) whose start stays, and the file's comments."""
    from pipeline.methods.stic import chain

    old = read_yaml(params).get("stic", {}).get("rounds") or {}
    new = chain(n, old)
    text = edit(params, replace=("stic.rounds", new))
    atomic_write_text(params, text)
    typer.echo(f"{params}: stic.rounds r1..r{n} ({len(new) - n} branches kept); run `dvc repro`")


DOC = Path("docs/params.md")


def reference(params: Path, dvc_file: Path) -> str:
    """The parameter reference of `params` (pipeline.params_doc), with dvc_file's stage readers."""
    import typing

    from pipeline.methods.registry import CONFIGS
    from pipeline.params import Core
    from pipeline.params_doc import entries, render

    hints = typing.get_type_hints(Core)
    sections = {**{f.name: hints[f.name] for f in dataclasses.fields(Core)}, **CONFIGS}
    stages = read_yaml(dvc_file).get("stages") or {}
    readers = {name: [p for p in (s.get("do", s).get("params") or []) if isinstance(p, str)]
               for name, s in stages.items()}  # fmt: skip
    found = entries(sections, read_yaml(params), readers)
    return render(found, "bin/cgen params doc", sorted(readers))


@app.command("doc")
def doc(
    out: Annotated[Path, typer.Option("--out", help="where the reference goes")] = DOC,
    check: Annotated[bool, typer.Option("--check", help="exit 1 if --out is stale")] = False,
    params: Params = PARAMS_DEFAULT,
    dvc_file: Annotated[Path, typer.Option("--dvc-file")] = Path("dvc.yaml"),
) -> None:
    """Write the parameter reference (every key: type, allowed values, value, readers)."""
    text = reference(params, dvc_file)
    if check:
        if not out.is_file() or out.read_text() != text:
            typer.echo(f"{out} is stale: run bin/cgen params doc", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out}: up to date")
        return
    atomic_write_text(out, text)
    typer.echo(f"{out}: {text.count(chr(10) + '| `')} keys")
