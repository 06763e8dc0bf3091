"""The API's routes, a module per resource: its routes, and beside them how its records
become the wire models of :mod:`tickwork.wire` (the request and response bodies, shared
with the client library)."""
