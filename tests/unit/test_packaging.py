"""The Pi installs only the agent: its code and its extra must not drag in the server."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("server", "prometheus_client", "openpyxl", "matplotlib", "apprise", "urllib3.contrib.socks")


def test_agent_extra_holds_no_server_dependency():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = lambda reqs: {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower() for r in reqs}
    server_only = names(extras["server"]) - names(extras["agent"])
    assert server_only, "the server extra should have dependencies of its own"
    assert not names(extras["agent"]) & {"prometheus-client", "openpyxl", "matplotlib", "apprise"}


def test_running_the_agent_imports_nothing_of_the_server():
    code = ("import sys, agent.__main__, agent.service, agent.publisher, agent.printers.octoprint;"
            f"bad = [m for m in sys.modules if m.split('.')[0] in {SERVER_ONLY!r}];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""
