"""YAML and JSON files given to the CLI, with the line of every element, so that an
error the server reports about ``agents[1].triggers[0].cron_expression`` points at the
line of the file that holds it."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tickwork.cli.remote import UsageError

__all__ = ["Document", "read_document"]

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, except that dates and instants stay the text they were
    written as (``run_at: 2026-03-08T07:00:00Z``): the server reads them, with their
    offsets, exactly as it reads JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Document:
    """A file's data, and its YAML node tree (None when the file could not be
    composed as YAML, as some valid JSON cannot)."""

    path: Path
    data: Any
    root: yaml.Node | None

    def line_of(self, field: str) -> int | None:
        """The 1-based line of the element a field path names (``agents[1].name``), or
        of the nearest element that contains it when it is missing."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for name, index in _PART.findall(field):
            child: yaml.Node | None = None
            if name and isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == name:
                        child, line = value, key.start_mark.line + 1
                        break
            elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
                child = node.value[int(index)]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line

    def where(self, field: str) -> str:
        line = self.line_of(field)
        return f"{self.path}:{line}" if line is not None else str(self.path)


def read_document(path: Path) -> Document:
    """Read a YAML or JSON file (JSON by the ``.json`` suffix); every problem is a
    :class:`~tickwork.cli.remote.UsageError` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    root: yaml.Node | None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from None
        try:
            root = _compose(text)
        except yaml.YAMLError:  # valid JSON that YAML 1.1 reads otherwise: no lines
            root = None
    else:
        try:
            loader = _Loader(text)
            try:
                root = loader.get_single_node()
                data = None if root is None else loader.construct_document(root)
            finally:
                loader.dispose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
            raise UsageError(f"{at}: not valid YAML: {exc.problem or exc}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"{path}: not valid YAML: {exc}") from None
    document = Document(path, data, root)
    if root is not None:
        _refuse_duplicate_keys(document, root)
    _refuse_what_json_cannot_say(document, data, "")
    return document


def _compose(text: str) -> yaml.Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _refuse_duplicate_keys(document: Document, node: yaml.Node) -> None:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise UsageError(
                            f"{document.path}:{line}: key {key.value!r} appears twice in one "
                            f"mapping (first on line {seen[key.value]})"
                        )
                    seen[key.value] = line
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _refuse_what_json_cannot_say(document: Document, value: Any, field: str) -> None:
    """YAML can say what a JSON body cannot (binary, sets, keys that are not text,
    infinities): refused here, at its line, rather than sent."""
    problem: str | None = None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                problem = f"key {key!r} must be text (quote it)"
                break
            _refuse_what_json_cannot_say(document, item, f"{field}.{key}" if field else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_what_json_cannot_say(document, item, f"{field}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        problem = "infinities and NaN are not JSON numbers"
    elif value is not None and not isinstance(value, str | int | float | bool):
        problem = f"a {type(value).__name__} is not a JSON value (quote it)"
    if problem is not None:
        raise UsageError(f"{document.where(field)}: {field or 'the document'}: {problem}")
