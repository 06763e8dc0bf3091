from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwork.domain.template import render_message

PAYLOAD: dict[str, Any] = {
    "user": {"name": "Ada", "age": 36, "admin": True, "manager": None},
    "items": [{"title": "first"}, {"title": "second"}],
    "tags": ["a", "b"],
    "score": 9.5,
    "off": False,
    "zero": 0,
    "empty": "",
    "text": "line one\nline two",
    "unicode": "café ☕",
    "0": "a key that looks like an index",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {{ user.name }}", "Hello Ada"),
        ("Hello {{user.name}}", "Hello Ada"),
        ("Hello {{   user.name\t}}!", "Hello Ada!"),
        ("{{ user.age }} years", "36 years"),
        ("{{ score }}", "9.5"),
        ("{{ zero }}", "0"),
        ("admin={{ user.admin }} off={{ off }}", "admin=true off=false"),
        ("[{{ user.manager }}]", "[]"),  # null renders as nothing
        ("[{{ user.missing }}]", "[]"),
        ("[{{ nothing.at.all }}]", "[]"),
        ("[{{ empty }}]", "[]"),
        ("{{ items.1.title }}", "second"),
        ("[{{ items.2.title }}]", "[]"),  # past the end
        ("[{{ items.-1.title }}]", "[]"),  # no negative indexes
        ("[{{ items.first }}]", "[]"),  # a list is indexed by number only
        ("[{{ user.name.0 }}]", "[]"),  # strings are not indexed
        ("{{ tags }}", '["a","b"]'),
        ("{{ items.0 }}", '{"title":"first"}'),
        ("{{ text }}", "line one\nline two"),
        ("{{ unicode }}", "café ☕"),
        ("{{ 0 }}", "a key that looks like an index"),
        ("no placeholders", "no placeholders"),
        ("", json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":"))),
        ("{{ }}", ""),
        ("{{ user.name ", "{{ user.name "),  # unclosed: left alone
        ("{ user.name }", "{ user.name }"),
        ("{{{ user.name }}}", "{Ada}"),
        ("{{ user.name }}{{ user.age }}", "Ada36"),
    ],
)
def test_placeholders_render_from_the_payload(template: str, expected: str) -> None:
    assert render_message(template, PAYLOAD) == expected


def test_no_template_renders_the_payload_as_json() -> None:
    rendered = render_message(None, PAYLOAD)
    assert json.loads(rendered) == PAYLOAD
    assert "café" in rendered


def test_no_template_and_no_payload_is_an_empty_object() -> None:
    assert render_message(None, {}) == "{}"
    assert render_message(None, None) == "{}"


def test_a_rendered_value_is_not_rendered_again() -> None:
    payload = {"a": "{{ b }}", "b": "secret"}
    assert render_message("{{ a }}", payload) == "{{ b }}"


def test_templates_cannot_reach_python_attributes() -> None:
    payload = {"user": {"name": "Ada"}}
    for template in ("{{ user.__class__ }}", "{{ __class__ }}", "{{ user.name.upper }}"):
        assert render_message(template, payload) == ""
    assert render_message("{{ user.keys() }}", payload) == ""


def test_odd_python_values_do_not_break_rendering() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    payload = {"when": datetime(2026, 3, 8, tzinfo=UTC), "cyclic": cyclic, "big": 10**5000}
    assert render_message("{{ when }}", payload) == "2026-03-08 00:00:00+00:00"
    assert isinstance(render_message("{{ cyclic }}", payload), str)
    assert isinstance(render_message("{{ big }}", payload), str)
    assert isinstance(render_message(None, payload), str)


# Keys and paths from a small alphabet, so that generated placeholders hit real values.
keys = st.text(alphabet="ab01", max_size=2)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)
placeholders = st.text(alphabet="ab01. {}", max_size=8).map(lambda p: "{{" + p + "}}")
templates = st.lists(st.text(max_size=6) | placeholders, max_size=5).map("".join)


@given(template=templates, payload=st.dictionaries(keys, json_values, max_size=4))
def test_rendering_never_raises(template: str, payload: dict[str, Any]) -> None:
    assert isinstance(render_message(template, payload), str)


@given(
    key=st.text(alphabet="abcxyz_", min_size=1),
    value=st.text().filter(lambda t: "{{" not in t),
)
def test_a_string_value_comes_out_verbatim(key: str, value: str) -> None:
    assert render_message(f"<{{{{ {key} }}}}>", {key: value}) == f"<{value}>"
