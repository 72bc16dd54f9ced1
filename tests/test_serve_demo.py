"""``taskstore serve --demo``: the first command of the README works from nothing."""

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from support import csrf_token, free_port

pytestmark = pytest.mark.slow  # starts `taskstore serve --demo`


def test_serve_demo_starts_with_data_a_key_and_a_login(tmp_path):
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TASKSTORE_")}
    env["TASKSTORE_INSTANCE_PATH"] = str(tmp_path)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "webapp", "serve", "--demo", "--port", str(port)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        output = log_path.read_text()
        assert "alembic" not in output  # the migration steps stay quiet unless -v
        key = re.search(r"Admin API key: (\S+)", output).group(1)
        password = re.search(r"Admin UI login: user 'admin', password (\S+)", output).group(1)
        assert f"http://127.0.0.1:{port}/" in output

        dags = httpx.get(base + "/api/v2/dags", headers={"Authorization": f"Bearer {key}"}).json()
        assert dags["total_entries"] >= 3 and all(dag["key_count"] > 0 for dag in dags["dags"])
        assert (tmp_path / "taskstore-demo.db").exists()

        with httpx.Client(base_url=base) as browser:
            page = browser.get("/login").text
            token = csrf_token(page)
            response = browser.post("/login", data={"username": "admin", "password": password, "csrf_token": token})
            assert response.status_code == 302
            assert "spark_daily_aggregation" in browser.get("/").text

        # The banner's export lines point another taskstore command at the demo.
        exports = [line.strip() for line in output.splitlines() if line.strip().startswith("export TASKSTORE_")]
        assert len(exports) == 2
        other = subprocess.run(["bash", "-c", "; ".join(exports) + f"; {sys.executable} -m webapp users list"],
                               env=env | {"TASKSTORE_INSTANCE_PATH": str(tmp_path / "elsewhere")},
                               capture_output=True, text=True, timeout=60)
        assert other.returncode == 0, other.stderr
        assert re.search(r"^admin\s", other.stdout, re.MULTILINE)
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_serve_on_a_taken_port_says_so_before_anything_else(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("TASKSTORE_")}
    env["TASKSTORE_INSTANCE_PATH"] = str(tmp_path / "instance")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "webapp", "serve", "--demo", "--port", str(port)], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr and "--port" in result.stderr
    assert result.stdout == "" and "Admin API key" not in result.stderr
    assert not (tmp_path / "instance").exists()  # nothing was made
