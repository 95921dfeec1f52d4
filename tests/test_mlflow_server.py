"""scripts/mlflow_server.sh keeps the tracking server safe to share: any address beyond loopback
needs MLflow's login, no password is ever printed or put on a command line, and the Host names
clients use are allowed.

The fast tests run a copy of the script in a scratch "repository" whose .venv/bin/mlflow is a stub
that records the command line and environment it was started with, so they check what the script
really executes, and nothing listens on any port. The slow test starts the real server with its
login on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
from support import stop_server

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "scripts" / "mlflow_server.sh"

DB_PASSWORD = "Pg5ecretXyz"  # a PostgreSQL store's password
ADMIN_PASSWORD = "AdminPw-0123456789"  # the login's admin password (12 characters at least)
PG_STORE = f"postgresql://cg:{DB_PASSWORD}@db.example/mlflow"

RECORDER = """\
import json, os, sys
keep = ("MLFLOW_", "CGEN_", "_CGEN")
env = {k: v for k, v in os.environ.items() if k.startswith(keep)}
with open(os.environ["FAKE_MLFLOW_RECORD"], "w") as fh:
    json.dump({"argv": sys.argv[1:], "env": env, "umask": os.umask(0o22)}, fh)
"""


def script_env(**extra: str) -> dict:
    """This environment without any setting of the script's or MLflow's server and login."""
    drop = ("CGEN_MLFLOW_", "MLFLOW_AUTH_", "MLFLOW_SERVER_", "MLFLOW_BACKEND_STORE_URI",
            "MLFLOW_FLASK_SERVER_SECRET_KEY", "MLFLOW_TRACKING_")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return env | {"MLFLOW_DISABLE_TELEMETRY": "true"} | extra


@pytest.fixture
def repo(tmp_path) -> Path:
    """A scratch repository: the script, and a .venv whose mlflow records how it was started and
    whose python (for the script's checks) has a stand-in Flask-WTF."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SERVER, tmp_path / "scripts" / "mlflow_server.sh")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (tmp_path / "stubs" / "flask_wtf").mkdir(parents=True)
    (tmp_path / "stubs" / "flask_wtf" / "__init__.py").write_text("")
    (bin_ / "mlflow").write_text(f"#!{sys.executable}\n{RECORDER}")
    (bin_ / "python").write_text(
        f'#!/bin/sh\nPYTHONPATH="{tmp_path / "stubs"}" exec "{sys.executable}" "$@"\n'
    )
    for exe in ("mlflow", "python"):
        (bin_ / exe).chmod(0o755)
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(repo: Path, *args: str, env: dict | None = None) -> tuple[int, str, str, dict]:
    """Run the copied script; returns (exit code, stdout, stderr, what the stub mlflow recorded,
    {} when it was not started). Output goes to files: the script's background helper keeps the
    descriptors open a moment after the stub exits."""
    record = repo / "record.json"
    record.unlink(missing_ok=True)
    env = (env if env is not None else script_env()) | {"FAKE_MLFLOW_RECORD": str(record)}
    out, err = repo / "out.txt", repo / "err.txt"
    with open(out, "w") as o, open(err, "w") as e:
        res = subprocess.run(["sh", str(repo / "scripts" / "mlflow_server.sh"), *args],
                             stdout=o, stderr=e, env=env, timeout=60)  # fmt: skip
    recorded = json.loads(record.read_text()) if record.exists() else {}
    return res.returncode, out.read_text(), err.read_text(), recorded


# ---------------------------------------------------------------- beyond loopback: a login


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "myhost.lan"])
def test_a_non_loopback_host_without_credentials_is_refused_in_one_line(repo, host):
    port = str(free_port())
    code, out, err, recorded = run_script(repo, "--host", host, "--port", port)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "CGEN_MLFLOW_ADMIN_PASSWORD" in err and "CGEN_MLFLOW_ADMIN_PASSWORD_FILE" in err
    assert recorded == {}  # mlflow never started
    assert not (repo / ".tracking").exists()  # nothing written


def test_print_command_refuses_the_same_and_passwords_go_nowhere_else(repo):
    code, out, err, _ = run_script(repo, "--host", "0.0.0.0", "--print-command")
    assert code == 2 and len(err.strip().splitlines()) == 1
    # no option takes a password: it cannot end up in argv or the shell history
    code, out, err, _ = run_script(repo, "--password", ADMIN_PASSWORD)
    assert code == 2 and "unknown argument" in err


@pytest.mark.parametrize("extra", [["--host", "0.0.0.0"], ["-h", "0.0.0.0"], ["--host=::"],
                                   ["--backend-store-uri", PG_STORE], ["--app-name=basic-auth"],
                                   ["--allowed-hosts", "*"], ["--gunicorn-opts", "-b 0.0.0.0:5001"],
                                   ["--uvicorn-opts=--host 0.0.0.0"], ["--env-file", "x.env"],
                                   ["--disable-security-middleware"]])  # fmt: skip
def test_mlflow_options_after_the_separator_cannot_get_around_the_checks(repo, extra):
    code, out, err, recorded = run_script(repo, "--print-command", "--", *extra)
    assert code == 2 and len(err.strip().splitlines()) == 1 and recorded == {}
    assert DB_PASSWORD not in out + err


@pytest.mark.parametrize("option", ["--store", "--auth-db"])
def test_a_uri_with_a_password_is_refused_on_the_command_line(repo, option):
    code, out, err, recorded = run_script(repo, option, PG_STORE, "--print-command")
    assert code == 2 and f"{option} holds a password" in err and recorded == {}
    assert DB_PASSWORD not in out + err


def test_a_short_admin_password_is_refused_before_mlflow_starts(repo):
    env = script_env(CGEN_MLFLOW_ADMIN_PASSWORD="short")
    code, out, err, recorded = run_script(repo, "--host", "0.0.0.0", env=env)
    assert code == 2 and "12 characters" in err and recorded == {}
    assert "short" not in out + err


def test_loopback_runs_without_a_login_as_before(repo):
    port = free_port()
    code, out, err, recorded = run_script(repo, "--port", str(port))
    assert code == 0, err
    assert f"tracking.uri: http://127.0.0.1:{port}" in out
    argv, env = recorded["argv"], recorded["env"]
    assert argv[:2] == ["server", "--serve-artifacts"] and "--app-name" not in argv
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert "--backend-store-uri" not in argv
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{repo}/.tracking/server/mlflow.db"
    # MLflow's own Host check (localhost and private addresses) is left as it is
    assert "MLFLOW_SERVER_ALLOWED_HOSTS" not in env and "MLFLOW_AUTH_CONFIG_PATH" not in env


def test_a_store_password_is_never_printed_nor_on_the_command_line(repo):
    env = script_env(CGEN_MLFLOW_STORE=PG_STORE, CGEN_MLFLOW_ADMIN_PASSWORD=ADMIN_PASSWORD)
    port = free_port()
    args = ["--host", "0.0.0.0", "--port", str(port), "--allowed-hosts", "mlflow.lan,*.corp"]

    code, out, err, recorded = run_script(repo, *args, "--print-command", env=env)
    assert code == 0, err
    for secret in (DB_PASSWORD, ADMIN_PASSWORD):
        assert secret not in out + err
    assert "postgresql://cg:****@db.example/mlflow" in out
    assert "MLFLOW_AUTH_ADMIN_PASSWORD=****" in out
    command = next(line for line in out.splitlines() if line.startswith("command: "))
    assert "--app-name basic-auth" in command and "--backend-store-uri" not in command
    assert recorded == {} and not (repo / ".tracking").exists()  # a dry run starts nothing

    code, out2, err, recorded = run_script(repo, *args, env=env)
    assert code == 0, err
    for secret in (DB_PASSWORD, ADMIN_PASSWORD):
        assert secret not in out2 + err
        assert all(secret not in a for a in recorded["argv"])
    argv, menv = recorded["argv"], recorded["env"]
    # the same command as the dry run printed
    assert command == "command: " + " ".join([str(repo / ".venv" / "bin" / "mlflow"), *argv])
    # the secrets reach mlflow in its environment
    assert menv["MLFLOW_BACKEND_STORE_URI"] == PG_STORE
    assert menv["MLFLOW_AUTH_ADMIN_PASSWORD"] == ADMIN_PASSWORD
    assert menv["MLFLOW_AUTH_ADMIN_USERNAME"] == "admin"
    assert len(menv["MLFLOW_FLASK_SERVER_SECRET_KEY"]) == 64
    assert argv[argv.index("--app-name") + 1] == "basic-auth"
    assert recorded["umask"] == 0o077  # what the server writes is its user's only
    # the login's config: mode 600, without the password
    ini = Path(menv["MLFLOW_AUTH_CONFIG_PATH"])
    assert ini == repo / ".tracking" / "server" / "basic_auth.ini"
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    text = ini.read_text()
    assert ADMIN_PASSWORD not in text and DB_PASSWORD not in text
    assert f"database_uri = sqlite:///{repo}/.tracking/server/basic_auth.db" in text
    assert "default_permission = EDIT" in text
    # the names clients use are allowed: the printed URI's, loopback's, and the extra ones
    hostname = socket.gethostname()
    assert f"tracking.uri: http://{hostname}:{port}" in out2
    allowed = menv["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    for name in (f"{hostname}:{port}", hostname, f"127.0.0.1:{port}", f"localhost:{port}",
                 "mlflow.lan", "*.corp"):  # fmt: skip
        assert name in allowed, allowed


def test_a_password_in_the_query_and_a_percent_sign_are_handled(repo):
    store = f"postgresql://db.example/mlflow?user=cg&password={DB_PASSWORD}&sslmode=require"
    auth_db = f"postgresql://cg:{DB_PASSWORD}%21@db.example/auth"
    env = script_env(CGEN_MLFLOW_STORE=store, CGEN_MLFLOW_ADMIN_PASSWORD=ADMIN_PASSWORD,
                     CGEN_MLFLOW_AUTH_DB=auth_db)  # fmt: skip
    # a dry run: the script never contacts the address
    code, out, err, _ = run_script(repo, "--host", "192.0.2.10", "--port", "5999",
                                   "--print-command", env=env)  # fmt: skip
    assert code == 0, err
    assert DB_PASSWORD not in out + err and "password=****&sslmode=require" in out
    assert "tracking.uri: http://192.0.2.10:5999" in out
    line = next(x for x in out.splitlines() if "MLFLOW_SERVER_ALLOWED_HOSTS=" in x)
    assert {"192.0.2.10", "192.0.2.10:5999"} <= set(line.split("=", 1)[1].split(","))
    # configparser reads % as interpolation: the users database URI is escaped in the config
    code, out, err, recorded = run_script(repo, "--host", "0.0.0.0", "--port", str(free_port()),
                                          env=env)  # fmt: skip
    assert code == 0, err
    text = Path(recorded["env"]["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    assert f"cg:{DB_PASSWORD}%%21@db.example/auth" in text


def test_the_admin_password_from_a_file_of_mode_600_only(repo, tmp_path):
    secret = tmp_path / "admin.pw"
    secret.write_text(ADMIN_PASSWORD + "\n")
    secret.chmod(0o644)
    env = script_env(CGEN_MLFLOW_ADMIN_PASSWORD_FILE=str(secret), CGEN_MLFLOW_ADMIN_USER="boss")
    args = ["--host", "0.0.0.0", "--port", str(free_port())]
    code, out, err, recorded = run_script(repo, *args, env=env)
    assert code == 2 and "chmod 600" in err and len(err.strip().splitlines()) == 1
    assert recorded == {}

    secret.chmod(0o600)
    code, out, err, recorded = run_script(repo, *args, env=env)
    assert code == 0, err
    assert ADMIN_PASSWORD not in out + err
    assert all(ADMIN_PASSWORD not in a for a in recorded["argv"])
    assert recorded["env"]["MLFLOW_AUTH_ADMIN_PASSWORD"] == ADMIN_PASSWORD
    assert recorded["env"]["MLFLOW_AUTH_ADMIN_USERNAME"] == "boss"
    assert "MLFLOW_TRACKING_USERNAME=boss" in out


def test_the_login_without_flask_wtf_says_how_to_install_it(repo):
    (repo / "stubs" / "flask_wtf" / "__init__.py").write_text("raise ImportError('absent')\n")
    env = script_env(CGEN_MLFLOW_ADMIN_PASSWORD=ADMIN_PASSWORD)
    code, out, err, recorded = run_script(repo, "--host", "0.0.0.0", "--port", str(free_port()),
                                          env=env)  # fmt: skip
    assert code == 1 and "Flask-WTF" in err and len(err.strip().splitlines()) == 1
    assert recorded == {}


def test_the_usage_documents_the_login_and_the_dry_run():
    res = subprocess.run(["sh", str(SERVER), "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0
    for word in ("--print-command", "--allowed-hosts", "--auth", "CGEN_MLFLOW_ADMIN_PASSWORD",
                 "CGEN_MLFLOW_ADMIN_PASSWORD_FILE", "MLFLOW_TRACKING_PASSWORD"):  # fmt: skip
        assert word in res.stdout


# ---------------------------------------------------------------- the real server with its login


@pytest.mark.slow
def test_the_server_with_its_login_refuses_requests_without_it(tmp_path, monkeypatch):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = script_env(CGEN_MLFLOW_ADMIN_PASSWORD=ADMIN_PASSWORD)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        ["sh", str(SERVER), "--auth", "--port", str(port),
         "--store", f"sqlite:///{tmp_path}/server/mlflow.db",
         "--artifacts", str(tmp_path / "server" / "artifacts"), "--experiment", "login"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=login"

    def get(login: str | None) -> int:
        req = urllib.request.Request(url)
        if login:
            req.add_header("Authorization", "Basic " + b64encode(login.encode()).decode())
        try:
            return urllib.request.urlopen(req, timeout=5).status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        end = time.monotonic() + 240  # a first start on this loaded 2-core machine: ~20-30 s
        while time.monotonic() < end and proc.poll() is None:
            try:  # the experiment appears once the server answers and the script created it
                if get(f"admin:{ADMIN_PASSWORD}") == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(f"no server: {(tmp_path / 'server.log').read_text()[-3000:]}")
        assert get(None) == 401
        assert get("admin:not-the-password") == 401
        assert get(f"admin:{ADMIN_PASSWORD}") == 200
        # the health check stays open for probes
        assert urllib.request.urlopen(f"{base}/health", timeout=5).status == 200
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert ADMIN_PASSWORD not in ps
        # the project's flusher logs in with MLflow's client variables, and nothing else: without
        # them the run stays spooled, with them it arrives
        from pipeline.flusher import flush, pending
        from pipeline.tracking import Tracker, TrackingConfig

        monkeypatch.setattr("pipeline.tracking.spawn_flusher", lambda root: None)
        repo = tmp_path / "repo"
        repo.mkdir()
        cfg = TrackingConfig(enabled=True, uri=base, experiment="login", system_metrics=False)
        with Tracker(cfg, root=repo, run_name="judge", tags={}, params={"a": 1}) as run:
            run.log_history([{"loss": 1.0}])
        logged, problems = flush(repo, wait=True)
        assert logged == 0 and "401" in problems[0] and len(pending(repo)) == 1
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        assert flush(repo, wait=True) == (1, []) and not pending(repo)
    finally:
        stop_server(proc, log)
    text = (tmp_path / "server.log").read_text()
    assert ADMIN_PASSWORD not in text and "created experiment 'login'" in text
    assert stat.S_IMODE((tmp_path / "server" / "basic_auth.db").stat().st_mode) == 0o600
