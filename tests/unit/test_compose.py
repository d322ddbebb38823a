"""deploy/central/compose.yaml through `docker compose config` (the client alone, no engine)
with the committed .env.example, and the files it mounts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from server import config as server_config
from server import inventory

ROOT = Path(__file__).resolve().parents[2]
CENTRAL = ROOT / "deploy" / "central"
SERVICES = {"mosquitto", "influxdb", "grafana", "collector"}
# Made per installation by setup.sh / add-agent.sh, never committed.
GENERATED = {"mosquitto/passwd", "certs", "influxdb/readers"}


def _compose_command() -> list[str]:
    """`docker compose` (v2 plugin) if present, else `docker-compose` (v1, Debian's package)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("no docker compose client: apt-get install -y docker-compose "
                       "(or the docker-compose-plugin)")


def _config(env_file: Path) -> subprocess.CompletedProcess:
    # A clean environment: the host's variables must not fill in for a missing .env entry.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([*_compose_command(), "--env-file", str(env_file), "-f", "compose.yaml",
                           "config"], cwd=CENTRAL, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def rendered() -> dict:
    done = _config(CENTRAL / ".env.example")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def _example_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (CENTRAL / ".env.example").read_text().splitlines()
             if line and not line.startswith("#"))
    return dict(pairs)


def test_compose_config_accepts_the_file_with_the_example_env(rendered):
    assert set(rendered["services"]) == SERVICES


def test_every_secret_comes_from_the_env_file(rendered):
    example = _example_env()
    env = rendered["services"]["influxdb"]["environment"]
    assert env["INFLUXDB_ADMIN_PASSWORD"] == example["INFLUXDB_ADMIN_PASSWORD"]
    assert rendered["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == \
        example["GRAFANA_ADMIN_PASSWORD"]
    assert rendered["services"]["collector"]["environment"]["PRINTFARM_MQTT_PASSWORD"] == \
        example["COLLECTOR_MQTT_PASSWORD"]
    text = (CENTRAL / "compose.yaml").read_text()
    for line in text.splitlines():
        if re.search(r"PASSWORD\s*:", line):
            assert "${" in line, f"a literal secret in compose.yaml: {line.strip()}"


def test_a_missing_secret_stops_compose_with_its_name(tmp_path):
    env = {k: v for k, v in _example_env().items() if k != "INFLUXDB_ADMIN_PASSWORD"}
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    done = _config(tmp_path / ".env")
    assert done.returncode != 0 and "INFLUXDB_ADMIN_PASSWORD" in done.stderr


def test_the_env_file_and_generated_secrets_are_not_committed():
    ignored = subprocess.run(["git", "check-ignore", "deploy/central/.env", "deploy/central/mosquitto/passwd",
                              "deploy/central/certs/ca.key", "deploy/central/agents/pi/mqtt-password"],
                             cwd=ROOT, capture_output=True, text=True)
    assert len(ignored.stdout.split()) == 4, ignored.stdout


def _binds(service: dict) -> list[str]:
    """Host paths of bind mounts, from compose v2's long syntax or v1's "src:dst:mode"."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                out.append(volume["source"])
        elif volume.startswith("/"):
            out.append(volume.split(":")[0])
    return out


def _ports(service: dict) -> list[tuple[str, int]]:
    """(host ip or "", container port) from v2's long syntax or v1's "[ip:]host:container/proto"."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), int(port["target"])))
        else:
            parts = port.split("/")[0].split(":")
            out.append((parts[0] if len(parts) == 3 else "", int(parts[-1])))
    return out


def test_every_mounted_file_is_in_the_repository(rendered):
    for name, service in rendered["services"].items():
        for source in _binds(service):
            relative = Path(source).resolve().relative_to(ROOT.resolve())
            if any(str(relative).startswith(f"deploy/central/{g}") for g in GENERATED):
                continue
            assert (ROOT / relative).exists(), f"{name} mounts {relative}, which is missing"


def test_only_the_broker_tls_grafana_and_a_loopback_api_are_published(rendered):
    published = {name: _ports(service) for name, service in rendered["services"].items()
                 if service.get("ports")}
    assert set(published) == {"mosquitto", "grafana", "collector"}
    assert [port for _, port in published["mosquitto"]] == [8883]  # 1883 stays internal
    assert all(ip == "127.0.0.1" for ip, _ in published["collector"])


def test_grafana_is_published_over_https_only_with_the_certificate_setup_makes(rendered):
    grafana = rendered["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_SERVER_PROTOCOL"] == "https" and env["GF_SECURITY_COOKIE_SECURE"] == "true"
    assert env["GF_SERVER_DOMAIN"] == _example_env()["GRAFANA_HOSTNAME"]
    assert [port for _, port in _ports(grafana)] == [3000]  # the one port it serves, as HTTPS
    mounted = {Path(source).resolve() for source in _binds(grafana)}
    assert {(CENTRAL / "certs" / name).resolve() for name in ("grafana.crt", "grafana.key")} <= mounted
    volumes = yaml.safe_load((CENTRAL / "compose.yaml").read_text())["services"]["grafana"]["volumes"]
    targets = {v.split(":")[1] for v in volumes}
    assert {env["GF_SERVER_CERT_FILE"], env["GF_SERVER_CERT_KEY"]} <= targets


def test_the_collector_config_and_inventory_in_deploy_load(monkeypatch):
    monkeypatch.setenv("PRINTFARM_MQTT_PASSWORD", "x")
    monkeypatch.setenv("PRINTFARM_INFLUX_PASSWORD", "y")
    cfg = server_config.load(CENTRAL / "collector" / "server.toml")
    assert cfg.mqtt.host == "mosquitto" and cfg.mqtt.username == "collector"
    assert cfg.influx.url == "http://influxdb:8086" and not cfg.influx.create_database
    assert inventory.load(cfg.inventory)


def test_the_collector_image_copies_what_exists():
    for line in (CENTRAL / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_the_collector_image_copies_every_package_the_wheel_is_built_from():
    import tomllib

    includes = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {line.split()[1] for line in (CENTRAL / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}
    assert {name.rstrip("*") for name in includes} <= copied
