"""The parameter reference, generated from the typed configs: every key of params.yaml with its
type, its allowed values (a Literal's choices, and what the config's `validate` checks of it, in
the gate's own words), its value in params.yaml, the comment its field carries, and the stages
that read it (dvc.yaml's `params:`). `cgen params doc` writes it to docs/params.md; a test checks
the committed page is what this writes.

Library code: the classes, the parameter data and each stage's params keys arrive as arguments.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pipeline.config import _type_name

FIELD = re.compile(r"^\s*(\w+)\s*:[^#]*?(?:#\s*(.*))?$")
COMMENT = re.compile(r"^\s*#\s?(.*)$")


@dataclass(frozen=True)
class Entry:
    key: str  # dotted; `<name>` stands for any key of a mapping (a round, a variant)
    type: str
    allowed: str  # the checks of `validate` that name the field (a choice's values: `type`)
    value: str  # in params.yaml ("" under a `<name>` mapping: each entry sets its own)
    meaning: str  # the field's comment
    stages: tuple[str, ...]


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment: the comment lines right above the field, the one after it, and
    comment lines that continue it (below it, with no field after them)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out, above, last = {}, [], None
    for line in lines[1:]:
        if m := COMMENT.match(line):
            above.append(m.group(1).strip())
            continue
        m = FIELD.match(line)
        if m and m.group(1) in {f.name for f in dataclasses.fields(cls)}:
            out[m.group(1)] = " ".join([*above, m.group(2) or ""]).strip()
            last = m.group(1)
        elif above and last is not None:  # the last field's comment, continued below it
            out[last] = " ".join([out[last], *above]).strip()
            last = None
        else:
            last = None
        above = []
    return out


def field_checks(cls: type) -> dict[str, list[str]]:
    """Field name -> the messages of `cls.validate` that name it (what the gate refuses)."""
    check = cls.__dict__.get("validate")
    if check is None:
        return {}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(check)))
    except (OSError, TypeError):
        return {}
    messages = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ConfigError":
            for arg in node.args[:1]:
                pieces = arg.values if isinstance(arg, ast.JoinedStr) else [arg]
                messages.append("".join(
                    str(p.value) if isinstance(p, ast.Constant) else "…" for p in pieces
                ))  # fmt: skip
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, list[str]] = {}
    for msg in messages:
        for name in names:
            if re.search(rf"\b{re.escape(name)}\b", msg):
                out.setdefault(name, []).append(msg)
    return out


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass a field holds, directly or as `X | None`."""
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) in (typing.Union, types.UnionType):
        found = [a for a in get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def _value(data: Any, parts: Sequence[str]) -> str:
    node = data
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return ""
        node = node[part]
    if isinstance(node, Mapping):
        return ", ".join(map(str, node)) if node else "{}"
    return "null" if node is None else str(node).lower() if isinstance(node, bool) else str(node)


def readers(key: str, stage_params: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The stages whose dvc.yaml `params:` cover `key`: the key itself, a parent of it, or a part
    of it (a templated entry such as `stic.rounds.${key}` stands for `stic.rounds.<name>`)."""
    out = set()
    for stage, listed in stage_params.items():
        for entry in (re.sub(r"\$\{[^}]*\}", "<name>", e) for e in listed):
            if key == entry or key.startswith(entry + ".") or entry.startswith(key + "."):
                out.add(stage)
    return tuple(sorted(out))


def entries(
    sections: Mapping[str, type], data: Mapping, stage_params: Mapping[str, Sequence[str]]
) -> list[Entry]:
    """Every key under `sections` (section name -> its dataclass), in declaration order."""
    out: list[Entry] = []

    def walk(cls: type, prefix: str, parts: list[str]) -> None:
        hints = typing.get_type_hints(cls)
        comments, checks = field_comments(cls), field_checks(cls)
        for f in dataclasses.fields(cls):
            tp, key = hints[f.name], f"{prefix}.{f.name}"
            inner = _dataclass_of(tp)
            if inner is not None and get_origin(tp) not in (typing.Union, types.UnionType):
                walk(inner, key, [*parts, f.name])
                continue
            entry = Entry(key, _type_name(tp), "; ".join(checks.get(f.name, [])),
                          _value(data, [*parts, f.name]) if "<name>" not in parts else "",
                          comments.get(f.name, ""), readers(key, stage_params))  # fmt: skip
            out.append(entry)
            if get_origin(tp) is dict and dataclasses.is_dataclass(get_args(tp)[1]):
                walk(get_args(tp)[1], f"{key}.<name>", [*parts, f.name, "<name>"])

    for name, cls in sections.items():
        walk(cls, name, [name])
    return out


def _stages_cell(stages: Sequence[str], every: Sequence[str]) -> str:
    """The readers, or "all but …" when nearly every stage reads the key."""
    rest = [s for s in every if s not in stages]
    if len(stages) > 8 and len(rest) < len(stages) / 3:
        return f"all {len(every)} stages but {', '.join(rest)}" if rest else "every stage"
    return ", ".join(stages)


def render(entries: Sequence[Entry], command: str, every: Sequence[str]) -> str:
    """The reference as Markdown: one table per top-level section (`every`: all stage names)."""
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["# Parameter reference", "",
             f"Generated by `{command}` from the typed configs; do not edit. Every key of "
             "params.yaml: its type (a choice lists its values), what else the gate checks of it "
             "(in the gate's words), its value in params.yaml, what its field's comment "
             "says, and the DVC stages that read it (a change reruns them). `<name>` stands for "
             "any entry of a mapping (a round, a variant, a null sampler)."]  # fmt: skip
    section = None
    for e in entries:
        top = e.key.split(".")[0]
        if top != section:
            section = top
            lines += ["", f"## {top}", "",
                      "| key | type | allowed | params.yaml | read by | meaning |",
                      "|---|---|---|---|---|---|"]  # fmt: skip
        lines.append("| " + " | ".join(cell(c) for c in (
            f"`{e.key}`", e.type, e.allowed, f"`{e.value}`" if e.value else "",
            _stages_cell(e.stages, every), e.meaning)) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"
