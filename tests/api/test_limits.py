"""Request bodies above the cap are refused before they are parsed."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tickwork.api import problems
from tickwork.api.limits import BodyLimit


def small_app(limit: int) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/echo")
    def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    app.add_middleware(BodyLimit, limit=limit)
    return app


def test_a_declared_length_over_the_cap_gets_413_problem() -> None:
    with TestClient(small_app(100)) as client:
        response = client.post("/echo", content=b'{"a": "' + b"x" * 200 + b'"}')
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:tickwork:problem:payload-too-large"


def test_a_streamed_body_over_the_cap_gets_413_problem() -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"a": "'
        for _ in range(10):
            yield b"x" * 50
        yield b'"}'

    with TestClient(small_app(100)) as client:
        response = client.post("/echo", content=chunks())
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_a_body_under_the_cap_passes() -> None:
    with TestClient(small_app(100)) as client:
        response = client.post("/echo", json={"a": "b"})
    assert response.status_code == 200
    assert response.json() == {"a": "b"}
