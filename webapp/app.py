"""The app factory: settings, extensions bound with ``init_app``, blueprints, error handlers
and commands. Nothing here runs at import time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from .config import ENV_PREFIX, Settings, load_settings, require_secret_key

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def _asset_folder(name: str) -> str:
    # An installed wheel carries them inside the package; in a checkout they sit beside it.
    # Inside first: beside an installed package is site-packages, where another package's
    # "templates" folder could be.
    inside = PACKAGE_DIR / name
    return str(inside if inside.is_dir() else PACKAGE_DIR.parent / name)


class TaskStoreFlask(Flask):
    """Flask asks, for every hook and the view of every request, whether the function is a
    coroutine function: eight inspections per worker call. The answer for a function never
    changes, so it is kept (the functions are the hooks and views registered at start)."""

    def __init__(self, *args, **kwargs):
        self._sync_functions: dict = {}
        super().__init__(*args, **kwargs)

    def ensure_sync(self, func):
        try:
            return self._sync_functions[func]
        except KeyError:
            sync = self._sync_functions[func] = super().ensure_sync(func)
            return sync


def create_app(overrides: dict[str, Any] | None = None, *, instance_path: str | None = None) -> Flask:
    """Build the app. ``overrides`` are settings (as in ``Settings``) that win over every
    other source; tests and ``serve --demo`` use them."""
    app = TaskStoreFlask(
        "webapp",
        instance_path=instance_path or str(instance_folder()),
        template_folder=_asset_folder("templates"),
        static_folder=_asset_folder("static"),
    )
    settings = load_settings(app.instance_path, overrides)
    app.config.update(
        TASKSTORE=settings,
        SECRET_KEY=require_secret_key(settings),
        SQLALCHEMY_DATABASE_URI=database_url(settings, app.instance_path),
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    from .cookie_session import CookieSessionInterface

    app.session_interface = CookieSessionInterface()

    from . import database, errorhandlers, metrics, request_log, security
    from .api import (  # noqa: F401  (access, admin, admin_store: routes of core.bp; worker_assets: of worker.bp)
        access,
        admin,
        admin_assets,
        admin_lifecycle,
        admin_store,
        core,
        health,
        openapi,
        service,
        worker,
        worker_assets,
    )
    from .api import metrics as metrics_api
    from .cli import register_commands
    from .extensions import csrf, db, migrate
    from .ui import bp as ui_bp

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = database.engine_options(settings, app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        database.configure_engine(db.engine, settings)
        app.extensions[database.WRITER_QUEUE] = database.writer_queue(db.engine, settings)
    if settings.metrics != "off":
        metrics.enable()  # once per process: every app of the process counts into the same figures
    request_log.init_app(app, settings)

    from .http import CONVERTERS

    app.url_map.converters.update(CONVERTERS)  # before the routes that use them
    app.register_blueprint(worker.bp)
    app.register_blueprint(core.bp)
    app.register_blueprint(service.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(metrics_api.bp)
    app.register_blueprint(ui_bp)
    # CSRF checks for the UI's forms and htmx requests, which ride on the session cookie.
    # The APIs authenticate every request with a bearer token a browser never adds by itself.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # as long as the session: an open page can still log out
    csrf.init_app(app)
    csrf.exempt(worker.bp)
    csrf.exempt(core.bp)
    csrf.exempt(service.bp)
    errorhandlers.register(app)
    security.register(app)
    register_commands(app)
    return app


def instance_folder() -> Path:
    """Where the default SQLite file, the demo secret and ``taskstore.toml`` live."""
    configured = os.environ.get(f"{ENV_PREFIX}INSTANCE_PATH")
    return Path(configured) if configured else Path(Flask("webapp").instance_path)


def database_url(settings: Settings, instance_path: str) -> str:
    if settings.database_url:
        return settings.database_url
    os.makedirs(instance_path, mode=0o700, exist_ok=True)  # it holds the database and the demo's secrets
    return "sqlite:///" + os.path.join(instance_path, "taskstore.db")
