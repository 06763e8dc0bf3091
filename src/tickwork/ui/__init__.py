"""The web UI (SPEC §12): server-rendered pages at ``/ui/`` over the same services the
API calls, with their static files served by tickwork itself.

:func:`install` adds it to an app made by :func:`tickwork.api.app.create_app`; its
routes are left out of the OpenAPI document.
"""

from __future__ import annotations

from tickwork.ui.pages import install

__all__ = ["install"]
