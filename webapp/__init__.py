"""Task Store: a persistent key/value store per workflow task instance.

Importing the package loads nothing: the worker client (``webapp.client``) and the Airflow
integration must not drag in Flask or SQLAlchemy. ``create_app`` (``webapp.app``) is loaded
on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "instance_folder"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
