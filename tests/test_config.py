"""Configuration: ``TASKSTORE_*`` environment variables over an optional
TOML file over the defaults; a bad, unknown or missing setting stops start-up with a
message that names it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect, select

from support import put_key, store_url
from webapp import create_app
from webapp.config import ConfigError
from webapp.extensions import db
from webapp.models import TaskState

SECRET = "config-test-secret-Pw7Lk2Qz9Rt4Xv6Bn1Mc8Jd3"


@pytest.fixture
def build(tmp_path):
    """create_app with the environment as the test set it, in a folder of its own."""
    made = []

    def _build(overrides=None):
        app = create_app(overrides, instance_path=str(tmp_path))
        made.append(app)
        return app

    yield _build
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def with_secret(monkeypatch):
    monkeypatch.setenv("TASKSTORE_SECRET_KEY", SECRET)


def config_error(build, overrides=None) -> str:
    with pytest.raises(ConfigError) as caught:
        build(overrides)
    return str(caught.value)


# --- defaults and environment variables ---------------------------------------------------


def test_defaults(build, with_secret, tmp_path):
    app = build()
    settings = app.config["TASKSTORE"]
    assert settings.default_retention_days == 30
    assert settings.clear_on_success is False
    assert settings.max_value_bytes == 65535
    assert settings.cleanup_batch_size == 1000
    assert settings.token_lifetime_seconds == 600
    assert app.config["SECRET_KEY"] == SECRET
    # The database is a SQLite file in the instance folder.
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + str(tmp_path / "taskstore.db")


@pytest.mark.parametrize("variable, raw, setting, expected", [
    ("TASKSTORE_DEFAULT_RETENTION_DAYS", "7", "default_retention_days", 7),
    ("TASKSTORE_DEFAULT_RETENTION_DAYS", "0", "default_retention_days", 0),
    ("TASKSTORE_CLEAR_ON_SUCCESS", "true", "clear_on_success", True),
    ("TASKSTORE_CLEAR_ON_SUCCESS", "1", "clear_on_success", True),
    ("TASKSTORE_CLEAR_ON_SUCCESS", "false", "clear_on_success", False),
    ("TASKSTORE_MAX_VALUE_BYTES", "0", "max_value_bytes", 0),
    ("TASKSTORE_MAX_VALUE_BYTES", "1024", "max_value_bytes", 1024),
    ("TASKSTORE_CLEANUP_BATCH_SIZE", "50", "cleanup_batch_size", 50),
    ("TASKSTORE_TOKEN_LIFETIME_SECONDS", "120", "token_lifetime_seconds", 120),
])
def test_environment_variables_are_read(build, with_secret, monkeypatch, variable, raw, setting, expected):
    monkeypatch.setenv(variable, raw)
    assert getattr(build().config["TASKSTORE"], setting) == expected


def test_database_url_from_the_environment(build, with_secret, monkeypatch, tmp_path):
    url = "sqlite:///" + str(tmp_path / "elsewhere.db")
    monkeypatch.setenv("TASKSTORE_DATABASE_URL", url)
    assert build().config["SQLALCHEMY_DATABASE_URI"] == url


def test_settings_from_the_environment_change_behaviour(migrated_database, make_app, admin_auth, monkeypatch,
                                                        tmp_path):
    """The running app does what the variables say: clear on success, token lifetime and
    default retention, on the test database."""
    monkeypatch.setenv("TASKSTORE_DATABASE_URL", migrated_database)
    monkeypatch.setenv("TASKSTORE_SECRET_KEY", SECRET)
    monkeypatch.setenv("TASKSTORE_CLEAR_ON_SUCCESS", "true")
    monkeypatch.setenv("TASKSTORE_TOKEN_LIFETIME_SECONDS", "90")
    monkeypatch.setenv("TASKSTORE_DEFAULT_RETENTION_DAYS", "3")
    app = create_app(instance_path=str(tmp_path))
    try:
        client = app.test_client()
        admin = admin_auth()
        created = client.post("/api/v2/dags/dag/dagRuns", headers=admin,
                              json={"dag_run_id": "r1", "tasks": [{"task_id": "t"}]})
        assert created.status_code == 201
        ti = created.json["task_instances"][0]["id"]
        ti_url = "/api/v2/dags/dag/dagRuns/r1/taskInstances/t"  # the admin API's task instance

        issued = client.post(f"/api/v2/taskInstances/{ti}/token", headers=admin).json
        assert datetime.fromisoformat(issued["expires_at"]) <= datetime.now(UTC) + timedelta(seconds=90)
        worker = {"Authorization": f"Bearer {issued['token']}"}
        put_key(client, worker, ti, "job", "j")

        edited = client.put(store_url("note", run="r1", task="t"), headers=admin,
                            json={"value": 1, "expires_at": "default"})
        assert edited.status_code == 201, edited.json
        expires_at = datetime.fromisoformat(edited.json["expires_at"])
        assert datetime.now(UTC) + timedelta(days=2) < expires_at <= datetime.now(UTC) + timedelta(days=3)

        assert client.patch(ti_url, headers=admin, json={"state": "running"}).status_code == 200
        assert client.patch(ti_url, headers=admin, json={"state": "success"}).status_code == 200
        with app.app_context():
            assert db.session.execute(select(TaskState.key)).scalars().all() == []
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- bad values ---------------------------------------------------------------------------


@pytest.mark.parametrize("variable, raw", [
    ("TASKSTORE_DEFAULT_RETENTION_DAYS", "-1"),
    ("TASKSTORE_DEFAULT_RETENTION_DAYS", "abc"),
    ("TASKSTORE_DEFAULT_RETENTION_DAYS", "1.5"),
    ("TASKSTORE_DEFAULT_RETENTION_DAYS", ""),
    ("TASKSTORE_CLEAR_ON_SUCCESS", "maybe"),
    ("TASKSTORE_MAX_VALUE_BYTES", "-5"),
    ("TASKSTORE_CLEANUP_BATCH_SIZE", "0"),
    ("TASKSTORE_CLEANUP_BATCH_SIZE", "lots"),
    ("TASKSTORE_TOKEN_LIFETIME_SECONDS", "ten"),
    ("TASKSTORE_TOKEN_LIFETIME_SECONDS", "5"),
    ("TASKSTORE_MAX_REQUEST_BYTES", "10"),
    ("TASKSTORE_DATABASE_URL", "not a database url"),
])
def test_a_bad_value_names_the_variable(build, with_secret, monkeypatch, variable, raw):
    monkeypatch.setenv(variable, raw)
    message = config_error(build)
    assert variable in message
    assert repr(raw) in message  # and shows what it got


def test_every_bad_value_is_named_at_once(build, with_secret, monkeypatch):
    monkeypatch.setenv("TASKSTORE_DEFAULT_RETENTION_DAYS", "-1")
    monkeypatch.setenv("TASKSTORE_CLEAR_ON_SUCCESS", "maybe")
    message = config_error(build)
    assert "TASKSTORE_DEFAULT_RETENTION_DAYS" in message
    assert "TASKSTORE_CLEAR_ON_SUCCESS" in message


def test_a_bad_database_url_does_not_show_its_password(build, with_secret, monkeypatch):
    monkeypatch.setenv("TASKSTORE_DATABASE_URL", "postgresql://taskstore:hunter2-pw@db:notaport/taskstore")
    message = config_error(build)
    assert "TASKSTORE_DATABASE_URL" in message
    assert "hunter2-pw" not in message


@pytest.mark.parametrize("variable", ["TASKSTORE_RETENTION_DAYS", "TASKSTORE_CLEAR_ON_SUCESS", "taskstore_debug"])
def test_an_unknown_variable_is_named(build, with_secret, monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    message = config_error(build)
    assert variable in message


def test_the_bootstrap_variables_are_not_unknown(build, with_secret, monkeypatch, tmp_path):
    monkeypatch.setenv("TASKSTORE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("TASKSTORE_CONFIG_FILE", raising=False)
    assert build().config["TASKSTORE"].default_retention_days == 30


# --- the secret key -----------------------------------------------------------------------


def test_a_missing_secret_key_is_named(build):
    assert "TASKSTORE_SECRET_KEY" not in os.environ
    message = config_error(build)
    assert "TASKSTORE_SECRET_KEY" in message


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_a_short_secret_key_is_refused_without_showing_it(build, monkeypatch, secret):
    monkeypatch.setenv("TASKSTORE_SECRET_KEY", secret)
    message = config_error(build)
    assert "TASKSTORE_SECRET_KEY" in message
    assert "32" in message
    if secret:
        assert secret not in message


def test_a_random_secret_key_of_32_characters_is_enough(build, monkeypatch):
    secret = "Vq3x8ZKpL2mN7rT4wY9bC6dF1gH5jS0a"
    monkeypatch.setenv("TASKSTORE_SECRET_KEY", secret)
    assert build().config["SECRET_KEY"] == secret


@pytest.mark.parametrize("secret", [" " * 32, "k" * 40, "ab" * 24, "password" * 4],
                         ids=["32 spaces", "one character", "two characters", "a word repeated"])
def test_a_predictable_secret_key_is_refused_saying_why(build, monkeypatch, secret):
    monkeypatch.setenv("TASKSTORE_SECRET_KEY", secret)
    with pytest.raises(ConfigError, match=r"TASKSTORE_SECRET_KEY: looks too predictable .* distinct characters, "
                                          r"about \d+ bits"):
        build()


@pytest.mark.parametrize("length", [32, 48, 64])
def test_generated_secrets_pass(build, monkeypatch, length):
    """What the message suggests, and the hex secrets of openssl rand -hex 16/24/32, all pass."""
    import secrets

    for secret in (secrets.token_urlsafe(48), secrets.token_hex(length // 2)):
        monkeypatch.setenv("TASKSTORE_SECRET_KEY", secret)
        assert build().config["SECRET_KEY"] == secret


# --- the config file ----------------------------------------------------------------------


def test_config_file_in_the_instance_folder_is_read(build, tmp_path):
    (tmp_path / "taskstore.toml").write_text(
        f'secret_key = "{SECRET}"\n'
        "default_retention_days = 12\n"
        "clear_on_success = true\n"
        "cleanup_batch_size = 25\n"
    )
    settings = build().config["TASKSTORE"]
    assert (settings.default_retention_days, settings.clear_on_success, settings.cleanup_batch_size) == (12, True, 25)


def test_environment_wins_over_the_config_file(build, monkeypatch, tmp_path):
    (tmp_path / "taskstore.toml").write_text(
        f'secret_key = "{SECRET}"\ndefault_retention_days = 12\nclear_on_success = true\n'
    )
    monkeypatch.setenv("TASKSTORE_DEFAULT_RETENTION_DAYS", "3")
    monkeypatch.setenv("TASKSTORE_SECRET_KEY", "from-the-environment-" + "z" * 20)
    app = build()
    assert app.config["TASKSTORE"].default_retention_days == 3
    assert app.config["TASKSTORE"].clear_on_success is True  # not overridden: the file's value
    assert app.config["SECRET_KEY"] == "from-the-environment-" + "z" * 20


def test_explicit_overrides_win_over_the_environment(build, with_secret, monkeypatch):
    monkeypatch.setenv("TASKSTORE_CLEANUP_BATCH_SIZE", "50")
    assert build({"cleanup_batch_size": 7}).config["TASKSTORE"].cleanup_batch_size == 7


def test_config_file_named_by_taskstore_config_file(build, monkeypatch, tmp_path):
    (tmp_path / "taskstore.toml").write_text("default_retention_days = 12\n")  # not this one
    elsewhere = tmp_path / "etc" / "store.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(f'secret_key = "{SECRET}"\ndefault_retention_days = 9\n')
    monkeypatch.setenv("TASKSTORE_CONFIG_FILE", str(elsewhere))
    assert build().config["TASKSTORE"].default_retention_days == 9


def test_a_missing_config_file_is_named(build, with_secret, monkeypatch, tmp_path):
    monkeypatch.setenv("TASKSTORE_CONFIG_FILE", str(tmp_path / "nope.toml"))
    message = config_error(build)
    assert "TASKSTORE_CONFIG_FILE" in message
    assert "nope.toml" in message


@pytest.mark.parametrize("content, named", [
    ("default_retention_days = -1\n", "DEFAULT_RETENTION_DAYS"),
    ('clear_on_success = "maybe"\n', "CLEAR_ON_SUCCESS"),
    ("retention = 3\n", "RETENTION"),
])
def test_a_bad_config_file_value_is_named(build, with_secret, tmp_path, content, named):
    (tmp_path / "taskstore.toml").write_text(content)
    assert named in config_error(build)


def test_a_config_file_that_is_not_toml_is_named(build, with_secret, tmp_path):
    (tmp_path / "taskstore.toml").write_text("default_retention_days = [\n")
    message = config_error(build)
    assert "taskstore.toml" in message


# --- the command line ---------------------------------------------------------------------


def run_cli(tmp_path, *args, **variables):
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("TASKSTORE_")}
    env.update(TASKSTORE_INSTANCE_PATH=str(tmp_path), **variables)
    return subprocess.run([sys.executable, "-m", "webapp", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_without_a_secret_key_fails_with_a_message(tmp_path):
    result = run_cli(tmp_path, "db", "upgrade")
    assert result.returncode != 0
    assert "TASKSTORE_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "taskstore.db").exists()  # nothing was touched


@pytest.mark.parametrize("variable, raw", [
    ("TASKSTORE_DEFAULT_RETENTION_DAYS", "-1"),
    ("TASKSTORE_CLEAR_ON_SUCCESS", "maybe"),
    ("TASKSTORE_RETENTION", "5"),
])
def test_cli_with_a_bad_setting_fails_with_a_message(tmp_path, variable, raw):
    result = run_cli(tmp_path, "db", "upgrade", TASKSTORE_SECRET_KEY=SECRET, **{variable: raw})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_with_a_broken_config_file_fails_with_a_message(tmp_path):
    (tmp_path / "taskstore.toml").write_text("this is not toml\n")
    result = run_cli(tmp_path, "db", "upgrade", TASKSTORE_SECRET_KEY=SECRET)
    assert result.returncode != 0
    assert "taskstore.toml" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_db_upgrade_with_a_configuration(tmp_path):
    url = "sqlite:///" + str(tmp_path / "configured.db")
    result = run_cli(tmp_path, "db", "upgrade", TASKSTORE_SECRET_KEY=SECRET, TASKSTORE_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    engine = create_engine(url)
    try:
        assert {"dag_run", "task_instance", "task_state", "api_key"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
