"""``deploy/``: the Compose file and systemd units that run InferPrep across machines.

No Docker daemon runs in CI, so what can be checked without one is: the files parse; every
variable they give the app is one the app reads and the README's Settings table documents;
every command is a real ``manage.py`` command whose options parse; the site runs with
``DEBUG=0`` behind the proxy only; the GPU service reserves NVIDIA cards; every ``${VAR}`` the
files need is in ``deploy/env.example``.
"""

from __future__ import annotations

import configparser
import io
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django.db import connections

from interview.celery import app as celery_app

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
SOURCES = ("interview", "grader", "engine", "lab")
READS = re.compile(r"""(?:os\.environ\.get|os\.environ\[|env_bool)\(?\s*["']([A-Z0-9_]+)["']""")
INTERPOLATED = re.compile(r"\$\{([A-Z0-9_]+)")


def _variables_the_app_reads() -> set[str]:
    names: set[str] = set()
    for package in SOURCES:
        for path in (REPO / package).rglob("*.py"):
            names |= set(READS.findall(path.read_text()))
    return names


def _documented_settings() -> set[str]:
    table = (REPO / "README.md").read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)`", table, re.M)) | {"HOST", "PORT"}


def _manage_py_command_parses(argv: list[str]) -> str:
    """``argv`` is ``[python, manage.py, name, options...]``: name a real command whose parser
    takes the options; returns the name."""
    assert argv[1].endswith("manage.py"), argv
    name, options = argv[2], argv[3:]
    commands = get_commands()
    assert name in commands, f"{name} is not a manage.py command"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    parser.parse_args(options)  # exits (SystemExit) on an unknown option
    return name


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def app_services(compose) -> dict[str, dict]:
    """The services that run this project's image (the others are Caddy, PostgreSQL, Redis)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "inferprep:latest"
    }


def test_the_web_host_runs_a_proxy_daphne_postgres_redis_and_cpu_workers(compose, app_services):
    services = compose["services"]
    assert {"proxy", "postgres", "redis", "migrate", "web", "cpu-worker", "gpu-worker"} <= set(
        services
    )
    assert services["proxy"]["image"].startswith("caddy:")
    assert "reverse_proxy web:8000" in (DEPLOY / "Caddyfile").read_text()
    # Only the proxy is reachable from outside; the site is Daphne, debug off.
    assert "ports" not in services["web"]
    assert all(service["environment"]["DEBUG"] == "0" for service in app_services.values())
    web = services["web"]["command"]
    assert web[2:4] == ["serve", "--prepare"] and "--no-worker" in web and "--proxy-headers" in web
    assert services["cpu-worker"]["command"][1:] == ["manage.py", "worker", "--queues", "cpu"]
    assert services["cpu-worker"]["deploy"]["replicas"] == "${CPU_WORKERS:-2}"
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_gpu_worker_reserves_the_hosts_nvidia_cards_and_needs_nothing_local(compose):
    gpu = compose["services"]["gpu-worker"]
    assert gpu["profiles"] == ["gpu"]  # not started on the web host
    assert gpu["command"] == ["python", "manage.py", "gpu_worker"]
    assert "depends_on" not in gpu  # PostgreSQL and Redis are the web host's
    (devices,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    environment = gpu["environment"]
    assert "${POSTGRES_HOST:-postgres}" in environment["DATABASE_URL"]
    assert "${REDIS_HOST:-redis}" in environment["REDIS_URL"]


def test_every_variable_given_to_the_app_is_read_by_it_and_documented(app_services):
    reads, documented = _variables_the_app_reads(), _documented_settings()
    given = {name for service in app_services.values() for name in service["environment"]}
    given |= set(re.findall(r"^ENV (.*)$", (DEPLOY / "Dockerfile").read_text(), re.M)[0].split())
    given = {item.split("=")[0] for item in given} - {"PYTHONUNBUFFERED"}
    for unit in ("env.example",):
        for line in (DEPLOY / "systemd" / unit).read_text().splitlines():
            if line and not line.startswith("#"):
                given.add(line.split("=", 1)[0])
    assert given >= {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"}
    assert given <= reads, f"not read by the app: {sorted(given - reads)}"
    assert given <= documented, f"not in the README's Settings: {sorted(given - documented)}"


def test_every_command_is_a_real_manage_py_command_whose_options_parse(app_services):
    ran = {_manage_py_command_parses(service["command"]) for service in app_services.values()}
    assert ran == {"migrate", "serve", "worker", "gpu_worker"}
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read(unit)
        service = parsed["Service"]
        assert service["EnvironmentFile"] == "/etc/inferprep/env"
        argv = shlex.split(service["ExecStart"].replace("%i", "1").replace("%H", "host"))
        assert argv[0] == "/opt/inferprep/.venv/bin/python"
        assert _manage_py_command_parses(argv) in {"worker", "gpu_worker"}
        assert service["Restart"] == "always"
        # `systemctl stop` signals the worker alone, which finishes its job (Compose's stop
        # does the same); the default would kill the job mid-run and delay it by the lost-job
        # timeout.
        assert service["KillMode"] == "mixed"


def test_every_variable_the_files_need_is_in_env_example():
    example = {
        line.lstrip("# ").split("=", 1)[0]
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if re.match(r"^#? ?[A-Z0-9_]+=", line)
    }
    needed = set(INTERPOLATED.findall((DEPLOY / "compose.yaml").read_text()))
    needed |= set(re.findall(r"\{\$([A-Z0-9_]+)\}", (DEPLOY / "Caddyfile").read_text()))
    assert needed == example


def _worker_dry_run(*options: str) -> str:
    out = io.StringIO()
    call_command(
        "worker", "--queues", "cpu", "--hostname", "cpu-1@host", "--dry-run", *options, stdout=out
    )
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_worker_hosts_dry_run_names_its_worker_and_checks_the_database_and_broker():
    out = _worker_dry_run()
    assert "cpu-1@host on queues cpu" in out
    assert "the database and the broker answer" in out


@pytest.mark.django_db(transaction=True)
def test_a_worker_hosts_dry_run_fails_naming_a_broker_it_cannot_reach(monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_write_url", "redis://127.0.0.1:1/0")
    with pytest.raises(CommandError, match="^broker unreachable: .*") as refused:
        _worker_dry_run()
    assert "database" not in str(refused.value)


@pytest.mark.django_db(transaction=True)
def test_a_worker_hosts_dry_run_fails_naming_a_database_it_cannot_reach(monkeypatch, tmp_path):
    # The probe's thread opens its own connection from these settings: a database (or SQLite
    # file) that does not exist.
    monkeypatch.setitem(connections.settings["default"], "NAME", str(tmp_path / "none" / "db"))
    with pytest.raises(CommandError, match="^database unreachable: .*") as refused:
        _worker_dry_run()
    assert "broker" not in str(refused.value)


def test_a_public_site_makes_no_demo_account_and_a_laptop_does(app_services, monkeypatch, settings):
    """`make run` prints a demo account's password for a first look; on the deployment anyone
    who could read the web service's log would have an account."""
    from interview.management.commands import serve

    assert all(service["environment"]["DEMO_ACCOUNT"] == "0" for service in app_services.values())
    for demo_account, expected in ((False, ["migrate", "load_bank"]),
                                   (True, ["migrate", "load_bank", "ensure_demo_user"])):  # fmt: skip
        called: list[str] = []
        monkeypatch.setattr(
            serve, "call_command", lambda name, _called=called, **_: _called.append(name)
        )
        settings.DEMO_ACCOUNT = demo_account
        serve.prepare_steps()
        assert called == expected
