"""HTTP API tokens: stored hashed, revoked without a restart; each organisation sees its own
printers in full and the others' state only; no token, 401 (server/tokens.py, server/access.py)."""

from __future__ import annotations

import json
import os

import pytest
import requests

from server import tokens
from server.__main__ import main as server_main
from server.access import Access, Viewer, organisation_ids, state_only
from server.api import Api
from server.inventory import from_dict as inventory_from_dict
from server.metrics import Metrics

INVENTORY = {
    "sites": {"uni-lab": {"organisation": "Örebro universitet", "county": "Örebro"},
              "works": {"organisation": "Kilsbergens Verktyg AB", "county": "Örebro"}},
    "printers": {"mk4-1": {"site": "uni-lab"}, "x1-1": {"site": "works"}},
}
A, B = "orebro-universitet", "kilsbergens-verktyg-ab"


class Fleet:
    def snapshot(self):
        return {"printers": [
            {"printer": "mk4-1", "site": "uni-lab", "state": "printing", "file": "thesis_rig.gcode", "user": "u-0123456789ab",
             "state_text": "Printing thesis_rig.gcode", "error": None, "progress": 40.0},
            {"printer": "x1-1", "site": "works", "state": "error", "file": "jobs/bracket_volvo_rev_C.3mf",
             "user": "u-ba9876543210", "state_text": "Error", "error": "bracket_volvo_rev_C.3mf: nozzle clog"},
        ], "agents": []}


@pytest.fixture
def api(tmp_path):
    path = tmp_path / "api-tokens"
    inv = inventory_from_dict(INVENTORY)
    started = []

    def start(public: str = "off") -> tuple[Api, str]:
        access = Access(tokens.TokenFile(path), organisation_ids(inv), public)
        server = Api("127.0.0.1", 0, Fleet(), lambda: {"ok": True}, Metrics(), access=access)
        server.start()
        started.append(server)
        return server, f"http://127.0.0.1:{server.port}"

    start.path = path
    yield start
    for server in started:
        server.stop()


def fleet_as(url: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url + "/api/fleet", headers=headers, timeout=5)


def test_a_token_is_stored_only_as_its_sha256_and_the_file_is_private(tmp_path):
    path = tmp_path / "api-tokens"
    token, entry = tokens.issue(path, A, "lab\tscreen\n")
    text = path.read_text()
    assert token not in text and tokens.digest(token) in text and "lab screen" in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert tokens.TokenFile(path).scope(token) == A and tokens.TokenFile(path).scope(token + "x") is None


def test_an_organisations_token_shows_its_printers_in_full_and_the_others_as_state_only(api):
    _, url = api()
    token, _ = tokens.issue(api.path, A)
    printers = {p["printer"]: p for p in fleet_as(url, token).json()["printers"]}
    assert printers["mk4-1"]["file"] == "thesis_rig.gcode" and printers["mk4-1"]["user"] == "u-0123456789ab"
    other = printers["x1-1"]
    assert "file" not in other and "user" not in other and other["state"] == "error"
    assert "volvo" not in json.dumps(other) and other["error"] == "(file): nozzle clog"


def test_the_network_token_shows_every_printer_as_state_only(api):
    _, url = api()
    token, _ = tokens.issue(api.path, tokens.NETWORK)
    body = fleet_as(url, token).text
    assert "thesis_rig" not in body and "volvo" not in body and "u-" not in body and '"printing"' in body


def test_without_a_token_401_and_with_public_status_state_only(api):
    _, url = api()
    reply = fleet_as(url, None)
    assert reply.status_code == 401 and "printers" not in reply.text
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(url + "/", timeout=5).status_code == 401
    assert fleet_as(url, "pft_made-up").status_code == 401
    assert requests.get(url + "/healthz", timeout=5).status_code == 200  # no printer data in it
    _, kiosk = api(public="status")
    body = fleet_as(kiosk, None)
    assert body.status_code == 200 and "thesis_rig" not in body.text and '"printing"' in body.text


def test_a_revoked_token_is_refused_at_its_next_request_without_a_restart(api, capsys):
    _, url = api()
    keep, _ = tokens.issue(api.path, B)
    token, entry = tokens.issue(api.path, A)
    assert fleet_as(url, token).status_code == 200
    assert tokens.revoke(api.path, token_id=entry.id) == [entry]
    assert fleet_as(url, token).status_code == 401
    assert fleet_as(url, keep).status_code == 200


def test_the_login_form_sets_an_httponly_lax_cookie_that_the_page_and_api_accept(api):
    _, url = api()
    token, _ = tokens.issue(api.path, A)
    session = requests.Session()
    refused = session.post(url + "/login", data={"token": "pft_wrong"}, allow_redirects=False, timeout=5)
    assert refused.status_code == 401 and not refused.cookies
    reply = session.post(url + "/login", data={"token": token}, allow_redirects=False, timeout=5)
    assert reply.status_code == 303 and "HttpOnly" in reply.headers["Set-Cookie"]
    assert "SameSite=Lax" in reply.headers["Set-Cookie"] and "Secure" not in reply.headers["Set-Cookie"]
    behind_tls = requests.post(url + "/login", data={"token": token}, headers={"X-Forwarded-Proto": "https"},
                               allow_redirects=False, timeout=5)
    assert behind_tls.headers["Set-Cookie"].endswith("; Secure")
    assert session.get(url + "/", timeout=5).status_code == 200
    assert "thesis_rig" in session.get(url + "/api/fleet", timeout=5).text


def test_a_foreign_host_is_refused_before_any_token_is_looked_at(api):
    _, url = api()
    token, _ = tokens.issue(api.path, A)
    reply = requests.get(url + "/api/fleet", headers={"Host": "evil.example", "Authorization": f"Bearer {token}"},
                         timeout=5)
    assert reply.status_code == 403


def test_alerts_of_another_organisation_show_only_their_outline():
    access = Access(tokens.TokenFile("/nonexistent"), {"uni-lab": A, "works": B})
    incidents = [{"id": "1", "rule": "print_failed", "subject": "works/x1-1", "severity": "warning",
                  "opened": "t", "summary": "bracket_volvo failed", "message": "m", "details": {"file": "bracket_volvo"}},
                 {"id": "2", "rule": "print_failed", "subject": "uni-lab/mk4-1", "severity": "warning",
                  "opened": "t", "summary": "thesis failed", "message": "m", "details": {}}]
    shown = access.alerts(incidents, Viewer(A))
    assert "volvo" not in json.dumps(shown) and shown[1]["summary"] == "thesis failed"
    assert shown[0] == {"id": "1", "rule": "print_failed", "subject": "works/x1-1", "severity": "warning", "opened": "t"}


def test_state_only_cuts_a_files_base_name_out_of_texts_too():
    shown = state_only({"printer": "p", "file": "a/b/part.gcode", "user": "u", "state_text": "Printing part.gcode"})
    assert shown == {"printer": "p", "state_text": "Printing (file)"}


def test_the_token_commands_create_list_and_revoke(tmp_path, capsys):
    inventory = tmp_path / "fleet.toml"
    inventory.write_text('[sites.uni-lab]\norganisation = "Örebro universitet"\ncounty = "Örebro"\n')
    config = tmp_path / "server.toml"
    config.write_text(f'inventory = "{inventory}"\nstate_dir = "{tmp_path / "state"}"\n')
    assert server_main(["token-create", "-c", str(config), "--organisation", A, "--label", "lab screen"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("pft_") and "shown this once" in err
    assert tokens.TokenFile(tmp_path / "state" / "api-tokens").scope(token) == A
    assert server_main(["token-list", "-c", str(config)]) == 0
    listed = capsys.readouterr().out
    assert f"organisation {A}\t" in listed and "lab screen" in listed and token not in listed
    assert server_main(["token-create", "-c", str(config), "--organisation", "nobody"]) == 2
    assert "known: orebro-universitet" in capsys.readouterr().err
    token_id = listed.split("\t")[0]
    assert server_main(["token-revoke", "-c", str(config), "--id", token_id]) == 0
    assert tokens.read(tmp_path / "state" / "api-tokens") == []


def test_public_other_than_off_or_status_names_the_key_and_the_fix(tmp_path, capsys):
    config = tmp_path / "server.toml"
    config.write_text('inventory = "x"\n[http]\npublic = "yes"\n')
    assert server_main(["check-config", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "http.public" in err and "use 'off'" in err


def test_a_malformed_line_is_skipped_and_the_others_still_work(tmp_path):
    path = tmp_path / "api-tokens"
    token, _ = tokens.issue(path, A)
    with open(path, "a") as fh:
        fh.write("garbage line without a hash\n")
    os.utime(path)
    assert tokens.TokenFile(path).scope(token) == A


def test_a_post_elsewhere_or_an_oversized_login_is_refused_and_the_api_keeps_answering(api):
    _, url = api()
    assert requests.post(url + "/api/fleet", data={"token": "x"}, timeout=5).status_code == 405
    assert requests.post(url + "/login", data={"token": "x" * 10_000}, timeout=5).status_code == 413
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
