"""One definition of every body, no drift: the models the API's routes declare are the
wire models the client sends and parses (tickwork.wire), not copies of them."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

import tickwork.wire

# The admin deployment views: not wrapped by the client.
SERVER_ONLY = {"RestartOut", "SchedulerOut", "SchedulerLease", "DeploymentOut"}


def models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (inside lists, unions, generics)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found = [annotation]
        for field in annotation.model_fields.values():
            found += models(field.annotation)
        return found
    return [model for arg in get_args(annotation) for model in models(arg)]


def test_every_body_of_every_route_is_a_wire_model(app: FastAPI) -> None:
    declared: list[type[BaseModel]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        declared += models(route.response_model)
        if route.body_field is not None:
            declared += models(route.body_field.field_info.annotation)
    assert len(declared) > 30
    for model in declared:
        if model.__name__ in SERVER_ONLY:
            continue
        # A parametrized generic (Page[TriggerOut]) is made where it is used; its origin
        # is what is defined.
        origin = model.__pydantic_generic_metadata__.get("origin") or model
        assert origin.__module__.startswith("tickwork.wire."), model
        assert getattr(tickwork.wire, origin.__name__) is origin, model
