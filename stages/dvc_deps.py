"""`cgen dvc-deps`: the module dependencies of every dvc.yaml stage, written from the imports.

A stage's module deps are every project file its command runs: the dispatcher (`python -m
stages`), the command's module (`stages.cli.COMMANDS`) and what they import, transitively (top
level or inside functions), plus the packages' `__init__` files where they hold code. Written by
hand they drift; this command computes them from the source (`closure`) and, with `--write`,
rewrites each stage's `.py` deps in dvc.yaml in place (its other deps, its comments and its
layout kept). Without `--write` it lists what differs and exits 1 when anything does, which is
what the contract test checks: the committed dvc.yaml is what this command writes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Annotated

import typer

from stages.skeleton import repo_root

PACKAGES = ("pipeline", "stages")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def module_file(name: str, root: Path) -> Path | None:
    """The file of a project module (`pipeline.x` or `stages.y`), None for anything else."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports(path: Path, root: Path) -> set[str]:
    """Project modules imported anywhere in `path` (top level or inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            # `from pipeline import metrics`: the name may be a module itself
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if module_file(m, root) is not None}


def _nontrivial(path: Path) -> bool:
    """An __init__.py counts only when it runs something besides its docstring."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def closure(module: str, root: Path) -> set[str]:
    """Every project file that running `module` executes (repository-relative paths): the module,
    what it imports, transitively, and the packages' __init__ files where they hold code."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [
            ".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) not in seen
        ]
        path = module_file(name, root)
        if path is not None:
            todo += sorted(imports(path, root) - seen)
    files = set()
    for name in seen:
        path = module_file(name, root)
        if path is None or (path.name == "__init__.py" and not _nontrivial(path)):
            continue
        files.add(path.relative_to(root).as_posix())
    return files


def stage_module(cmd: str) -> str:
    """The module a stage's command runs: `bin/cgen NAME ...` -> COMMANDS[NAME]."""
    from stages.cli import COMMANDS

    match = re.match(r"\s*bin/cgen (\S+)", cmd)
    if not match or match.group(1) not in COMMANDS:
        raise ValueError(f"a stage command must start with bin/cgen COMMAND: {cmd[:60]!r}")
    return COMMANDS[match.group(1)][0]


def stage_closure(cmd: str, root: Path) -> set[str]:
    """What a stage command runs: the dispatcher (`python -m stages`) and the command's module."""
    return closure("stages.__main__", root) | closure(stage_module(cmd), root)


ITEM = re.compile(r"^(\s*)- (\S.*)$")
COMMENT = re.compile(r"^\s*#")
KEY = re.compile(r"^(\s*)([A-Za-z_@${}.-]+):(.*)$")


def rewrite(text: str, root: Path) -> str:
    """dvc.yaml's text with each stage's `.py` deps replaced by its closure (sorted, after the
    stage's other deps), everything else untouched."""
    import yaml

    cmds = {}
    for name, stage in (yaml.safe_load(text).get("stages") or {}).items():
        body = stage.get("do", stage)
        cmd = body["cmd"]
        cmds[name] = " ".join(cmd) if isinstance(cmd, list) else cmd
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    stage = None
    i = 0
    while i < len(lines):
        line = lines[i]
        key = KEY.match(line)
        if key and len(key.group(1)) == 2:  # a stage's name under `stages:`
            stage = key.group(2)
        if key and key.group(2) == "deps" and stage in cmds:
            out.append(line)
            i += 1
            items, comments, indent = [], [], None  # a comment stays with the dep below it
            while i < len(lines):
                if COMMENT.match(lines[i]):
                    comments.append(lines[i])
                    i += 1
                    continue
                m = ITEM.match(lines[i])
                if not m or (indent is not None and len(m.group(1)) != len(indent)):
                    break
                indent = m.group(1) if indent is None else indent
                items.append((comments, m.group(2).strip()))
                comments = []
                i += 1
            indent = indent or " " * (len(key.group(1)) + 2)
            kept = [(c, d) for c, d in items if not d.endswith(".py")]
            code = [([], d) for d in sorted(stage_closure(cmds[stage], root))]
            out += [text for c, d in [*kept, *code] for text in [*c, f"{indent}- {d}\n"]]
            out += comments  # a comment after the last dep stays where it was
            continue
        out.append(line)
        i += 1
    return "".join(out)


def dep_counts(text: str) -> tuple[int, int]:
    """(dependency entries, of which .py files) over dvc.yaml's stages (a foreach counts once)."""
    import yaml

    stages = yaml.safe_load(text).get("stages") or {}
    deps = [d for s in stages.values() for d in (s.get("do", s).get("deps") or [])]
    return len(deps), sum(str(d).endswith(".py") for d in deps)


@app.command()
def main(
    write: Annotated[bool, typer.Option("--write", help="rewrite dvc.yaml in place")] = False,
    dvc_file: Annotated[Path, typer.Option("--dvc-file")] = Path("dvc.yaml"),
) -> None:
    """Check (default) or write (--write) the module deps of dvc.yaml's stages."""
    root = repo_root()
    path = dvc_file if dvc_file.is_absolute() else root / dvc_file
    old = path.read_text()
    new = rewrite(old, root)
    if new == old:
        n, py = dep_counts(new)
        typer.echo(f"{dvc_file}: up to date ({n} deps, {py} of them modules)")
        return
    if write:
        path.write_text(new)
        n, py = dep_counts(new)
        typer.echo(f"{dvc_file}: module deps rewritten ({n} deps, {py} of them modules)")
        return
    import difflib

    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), str(dvc_file), "bin/cgen dvc-deps --write", n=1
    )
    typer.echo("\n".join(line.rstrip("\n") for line in diff))
    raise typer.Exit(1)
