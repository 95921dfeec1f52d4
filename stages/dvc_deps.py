"""`cgen dvc-deps`: the code dependencies of every dvc.yaml stage, written from the imports.

The code a stage runs is every project file its command executes: the dispatcher (`python -m
stages`), the command's module (`stages.cli.COMMANDS`) and what they import, transitively (top
level or inside functions), plus the packages' `__init__` files where they hold code (`closure`).
One stage, `code` (`cgen code-hashes`, stages/code_hashes.py), depends on every such module and
writes, per stage command, the SHA-256 of each file that command runs (`listing`); every other
stage depends on its command's listing alone. A stage therefore reruns exactly when a module it
runs changes, and dvc.lock records each module once instead of once per stage (the lock, which
DVC parses and rewrites after every stage, is a third of the size).

Written by hand these deps drift; this command computes them and, with `--write`, rewrites
dvc.yaml's code deps in place (the other deps, comments and layout kept). Without `--write` it
lists what differs and exits 1 when anything does, which is what the contract test checks: the
committed dvc.yaml is what this command writes.
"""

from __future__ import annotations

import ast
import hashlib
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


CODE_COMMAND = "code-hashes"  # the code stage's command


def stage_command(cmd: str) -> str:
    """The command a stage runs: `bin/cgen NAME ...` -> NAME."""
    from stages.cli import COMMANDS

    match = re.match(r"\s*bin/cgen (\S+)", cmd)
    if not match or match.group(1) not in COMMANDS:
        raise ValueError(f"a stage command must start with bin/cgen COMMAND: {cmd[:60]!r}")
    return match.group(1)


def stage_module(cmd: str) -> str:
    """The module a stage's command runs: `bin/cgen NAME ...` -> COMMANDS[NAME]."""
    from stages.cli import COMMANDS

    return COMMANDS[stage_command(cmd)][0]


def command_closure(command: str, root: Path) -> set[str]:
    """What a command runs: the dispatcher (`python -m stages`) and the command's module."""
    from stages.cli import COMMANDS

    return closure("stages.__main__", root) | closure(COMMANDS[command][0], root)


def stage_closure(cmd: str, root: Path) -> set[str]:
    return command_closure(stage_command(cmd), root)


def listed_commands() -> list[str]:
    """The commands the code stage writes a listing for: every stage command but its own."""
    from stages.cli import COMMANDS, HELPERS

    return sorted(c for c in COMMANDS if c not in HELPERS and c != CODE_COMMAND)


def listing(command: str, root: Path) -> str:
    """The code a command runs as `sha256sum` lines ("<hex>  <path>"), sorted by path: it changes
    exactly when one of those files does (`sha256sum -c` checks a checkout against it)."""
    return "".join(
        f"{hashlib.sha256((root / f).read_bytes()).hexdigest()}  {f}\n"
        for f in sorted(command_closure(command, root))
    )


def code_deps(cmd: str, code_dir: str, root: Path) -> list[str]:
    """A stage's code deps: the code stage's, every module a stage command runs (its own
    included); any other stage's, its command's listing in `code_dir`."""
    command = stage_command(cmd)
    if command != CODE_COMMAND:
        return [f"{code_dir}/{command}.txt"]
    modules = command_closure(CODE_COMMAND, root)
    for c in listed_commands():
        modules |= command_closure(c, root)
    return sorted(modules)


ITEM = re.compile(r"^(\s*)- (\S.*)$")
COMMENT = re.compile(r"^\s*#")
KEY = re.compile(r"^(\s*)([A-Za-z_@${}.-]+):(.*)$")


def rewrite(text: str, root: Path) -> str:
    """dvc.yaml's text with each stage's code deps replaced by `code_deps` (after the stage's
    other deps), everything else untouched."""
    import yaml

    cmds = {}
    for name, stage in (yaml.safe_load(text).get("stages") or {}).items():
        body = stage.get("do", stage)
        cmd = body["cmd"]
        cmds[name] = " ".join(cmd) if isinstance(cmd, list) else cmd
    code_dir = next(
        (m.group(1) for c in cmds.values() if stage_command(c) == CODE_COMMAND
         for m in [re.search(r"--out (\S+)", c)] if m),
        None,
    )  # fmt: skip
    if code_dir is None:
        raise ValueError(f"no stage runs `bin/cgen {CODE_COMMAND} --out DIR` (the code stage)")
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
            code_dep = re.compile(rf"(.*\.py|{re.escape(code_dir)}/.*)$")
            kept = [(c, d) for c, d in items if not code_dep.match(d)]
            code = [([], d) for d in code_deps(cmds[stage], code_dir, root)]
            out += [text for c, d in [*kept, *code] for text in [*c, f"{indent}- {d}\n"]]
            out += comments  # a comment after the last dep stays where it was
            continue
        out.append(line)
        i += 1
    return "".join(out)


def dep_counts(text: str) -> tuple[int, int]:
    """(dependency entries, of which modules) over dvc.yaml's stages (a foreach counts once)."""
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
        typer.echo(f"{dvc_file}: code deps rewritten ({n} deps, {py} of them modules)")
        return
    import difflib

    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), str(dvc_file), "bin/cgen dvc-deps --write", n=1
    )
    typer.echo("\n".join(line.rstrip("\n") for line in diff))
    raise typer.Exit(1)
