"""The command line's one error path: a person gets one line and exit status 1, never a
traceback, whatever went wrong (bad input, nothing configured, an unmigrated database)."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import ApiKey


def run_taskstore(*args: str, env_overrides: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    """The real console entry point, as a person runs it (not Flask's test runner)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TASKSTORE_")}
    env.update(env_overrides or {})
    return subprocess.run([sys.executable, "-m", "webapp", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def assert_one_line_error(result, fragment: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_help_lists_every_command_without_any_configuration(tmp_path):
    result = run_taskstore("--help", env_overrides={"TASKSTORE_INSTANCE_PATH": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].strip().splitlines()}
    assert {"api-keys", "users", "token", "clean", "demo-data", "serve", "db"} <= listed
    assert "SECRET_KEY" not in result.stderr  # nothing to complain about: nothing was needed


def test_a_service_error_is_one_line_and_creates_nothing(app, runner):
    result = runner.invoke(args=["api-keys", "create", "x" * 101])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: name: must be 1 to 100 characters"
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(ApiKey)).scalar_one() == 0


def test_a_command_without_a_secret_says_which_setting_is_missing(tmp_path):
    result = run_taskstore("api-keys", "create", "ci", env_overrides={"TASKSTORE_INSTANCE_PATH": str(tmp_path)})
    assert result.returncode != 0
    assert "TASKSTORE_SECRET_KEY: not set" in result.stderr and "Traceback" not in result.stderr


def test_an_unmigrated_database_says_to_run_db_upgrade(tmp_path):
    settings = {
        "TASKSTORE_INSTANCE_PATH": str(tmp_path),
        "TASKSTORE_DATABASE_URL": "sqlite:///" + str(tmp_path / "empty.db"),
        "TASKSTORE_SECRET_KEY": "cli-errors-Vq3x8ZKpL2mN7rT4wY9bC6dF1gH5",
    }
    for command in (["api-keys", "create", "ci"], ["users", "create", "alice", "--password-stdin"], ["clean"],
                    ["token", "00000000-0000-0000-0000-000000000000"], ["demo-data"]):
        result = subprocess.run([sys.executable, "-m", "webapp", *command], input="password123\n", text=True,
                                capture_output=True, timeout=60,
                                env={**{k: v for k, v in os.environ.items() if not k.startswith("TASKSTORE_")},
                                     **settings})
        assert_one_line_error(result, "run `taskstore db upgrade`")
