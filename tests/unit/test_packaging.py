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
    code = ("import sys, agent.__main__, agent.service, agent.publisher, agent.printers.octoprint,"
            " agent.printers.moonraker, agent.printers.bambu.client;"
            f"bad = [m for m in sys.modules if m.split('.')[0] in {SERVER_ONLY!r}];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def _imports(path: Path) -> set[str]:
    """Top-level modules a source file imports (absolute imports only; the project uses no others)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_server_imports_nothing_from_the_agent_and_common_imports_neither():
    for package, forbidden in (("server", {"agent", "devkit", "tests"}), ("common", {"agent", "server", "devkit"}),
                               ("agent", {"server", "devkit", "tests"})):
        for path in (ROOT / package).rglob("*.py"):
            assert not _imports(path) & forbidden, f"{path.relative_to(ROOT)} imports {_imports(path) & forbidden}"


def test_the_production_wheel_holds_the_product_and_nothing_else(tmp_path):
    import shutil
    import zipfile

    # Build from a copy of what git tracks, so no build/ folder lands in the checkout.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "src"
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("printfarm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"common", "agent", "server"}
    assert any(name.startswith("server/web/status.html") for name in names)  # package data is in
    assert not [n for n in names if any(part in n for part in ("sim/", "demo/", "devkit", "tests/", "bench/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "printfarm-demo" not in zipfile.ZipFile(wheel).read(entry_points).decode()
