"""``printfarm-server run`` leaves the report builder to the commands that make reports: the
collector's start-up is part of how fast it drains a backlog (bench/collector_throughput.py times
it from its spawn), and a restart should not pay for XLSX and PDF code it never runs."""

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORT_BUILDER = ("server.reports.generate", "server.reports.build", "server.reports.ahead", "xlsxwriter",
                  "matplotlib", "openpyxl", "multiprocessing", "tqdm")


def loaded_after(imports: str) -> set[str]:
    code = f"import sys, {imports}; print(','.join(m for m in sys.modules if m in {REPORT_BUILDER!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(filter(None, out.stdout.strip().split(",")))


def test_what_the_collector_and_its_command_line_import_holds_no_report_builder():
    # The modules `server run` imports: its command line (every subcommand's options) and the collector.
    assert loaded_after("server.__main__, server.reports.cli, server.rollups.cli, server.privacy_cli, "
                        "server.collector, server.rollups.job, server.rollups.customers, server.api") == set()


def test_the_report_command_does_load_the_builder():  # the check above would see it
    assert {"server.reports.generate", "server.reports.build"} <= loaded_after("server.reports.generate")


def test_an_http_port_in_use_is_one_line_naming_the_key_not_a_traceback(tmp_path, capsys):
    from server.__main__ import main
    from devkit.servers.ports import HOST, free_port

    port = free_port()
    inventory = tmp_path / "fleet.toml"
    inventory.write_text('[sites.umu]\norganisation = "UmU"\ncounty = "Västerbotten"\n')
    config = tmp_path / "server.toml"
    config.write_text(f'inventory = "{inventory}"\nstate_dir = "{tmp_path / "state"}"\n'
                      f'[influx]\nspool_dir = "{tmp_path / "spool"}"\n[http]\nport = {port}\n')
    with socket.socket() as holder:
        holder.bind((HOST, port))
        holder.listen()
        assert main(["run", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: http: cannot listen on 127.0.0.1:") and "in use" in err
    assert "[http] port" in err and "Traceback" not in err
