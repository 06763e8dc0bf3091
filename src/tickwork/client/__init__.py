"""The tickwork client library: :class:`Client` and :class:`AsyncClient` over httpx.

Both have the same resources and methods (``client.triggers.create(...)``,
``client.invocations.list(...)``, …), send and parse the API's own wire models
(:mod:`tickwork.wire`), raise the server's problem answers as :class:`ApiError`, put an
``Idempotency-Key`` on every POST that creates something and retry transient failures
(:class:`RetryPolicy`), and send ``If-Match`` with a change based on a version
(``if_match=``, :func:`etag`). Importing it imports httpx and pydantic, never the server.
"""

from tickwork.client._async.client import AsyncClient
from tickwork.client._core import DEFAULT_TENANT, DEFAULT_TIMEOUT, RetryPolicy, etag
from tickwork.client._sync.client import Client
from tickwork.client.errors import ApiConnectionError, ApiError, ClientError

__all__ = [
    "DEFAULT_TENANT",
    "DEFAULT_TIMEOUT",
    "ApiConnectionError",
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientError",
    "RetryPolicy",
    "etag",
]
