"""The shipped dashboards against the types of grafana-foundation-sdk (Grafana's dashboard
schema, generated from Grafana's own CUE kinds), and the provisioning files against the keys
Grafana requires."""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard

from common.configkit import ConfigError
from dashboards import generate, influxql, macros
from server.grafana import orgs as grafana_orgs
from server.tenancy import NETWORK_READER, org_database, org_reader

ROOT = Path(__file__).resolve().parents[2]
JSON_DIR = ROOT / "dashboards" / "json"
PROVISIONING = ROOT / "dashboards" / "provisioning"
DASHBOARD_FILES = sorted(JSON_DIR.rglob("*.json"))
# InfluxDB's annotation target; the SDK types every target as Grafana's built-in one.
INFLUX_ANNOTATION_TARGET = {"refId", "query", "rawQuery", "resultFormat", "fromAnnotations",
                            "textColumn", "tagsColumn"}

plugins.register_default_plugins()
influxql.register()


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


# -- type checking a decoded dashboard -------------------------------------------------------

def _conforms(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if hint in (typing.Any, object):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_conforms(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(_conforms(k, key) and _conforms(v, item)
                                               for k, v in value.items())
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value in {m.value for m in hint}
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and hasattr(hint, "from_json") and isinstance(value, dict):
        # The SDK leaves some nested objects (transformations) as plain dicts: decode and check.
        decoded = hint.from_json(value)
        again = json.loads(json.dumps(decoded, cls=JSONEncoder))
        return not type_errors(decoded) and not _lost(value, again)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a bare TypeVar or similar: nothing to check


def type_errors(obj, path: str = "") -> list[str]:
    """Every attribute of every SDK model object in ``obj`` that does not have its declared type."""
    errors: list[str] = []
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            errors += type_errors(item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for key, item in obj.items():
            errors += type_errors(item, f"{path}.{key}")
    elif type(obj).__module__.startswith("grafana_foundation_sdk.models") and hasattr(obj, "__dict__"):
        hints = typing.get_type_hints(type(obj))
        for name, hint in hints.items():
            value = getattr(obj, name, None)
            if not _conforms(value, hint):
                errors.append(f"{path}.{name}: {value!r} is not {hint}")
            errors += type_errors(value, f"{path}.{name}")
    return errors


def _lost(original, decoded, path: str = "") -> list[str]:
    """Keys or values of ``original`` that did not survive decoding into the SDK's types."""
    if isinstance(original, dict) and isinstance(decoded, dict):
        out = []
        for key, value in original.items():
            if key not in decoded:
                out.append(f"{path}.{key} is not in the schema")
            else:
                out += _lost(value, decoded[key], f"{path}.{key}")
        return out
    if isinstance(original, list) and isinstance(decoded, list) and len(original) == len(decoded):
        return [e for i, (a, b) in enumerate(zip(original, decoded)) for e in _lost(a, b, f"{path}[{i}]")]
    return [] if original == decoded else [f"{path}: {original!r} became {decoded!r}"]


@pytest.fixture(params=DASHBOARD_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def board(request) -> dict:
    return _load(request.param)


def test_each_organisation_has_the_four_detail_dashboards_and_the_network_the_two_aggregate_ones():
    names = {p.relative_to(JSON_DIR).as_posix() for p in DASHBOARD_FILES}
    assert names == {f"organisation/{n}" for n in ("fleet-overview.json", "printer-detail.json",
                                                   "regional-utilisation.json", "alerts-events.json")} | \
        {"network/regional-utilisation.json", "network/funder.json", "network/directory.json"}


def test_the_committed_json_is_what_the_generator_writes():
    assert generate.main(["--check"]) == 0, "run: python -m dashboards.generate"


def test_a_dashboard_survives_decoding_into_the_sdk_types_unchanged(board):
    annotations = board.get("annotations", {}).get("list", [])
    decoded = json.loads(json.dumps(dashboard.Dashboard.from_json(board), cls=JSONEncoder))
    for annotation in [*annotations, *decoded.get("annotations", {}).get("list", [])]:
        annotation.pop("target", None)  # checked below, against InfluxDB's annotation target
    assert _lost(board, decoded) == []


def test_a_dashboard_has_the_types_the_schema_declares(board):
    assert type_errors(dashboard.Dashboard.from_json(board)) == []


def test_every_query_is_a_raw_influxql_query_on_the_provisioned_datasource(board):
    decoded = dashboard.Dashboard.from_json(board)
    for panel in decoded.panels:
        assert panel.datasource.uid == influxql.DATASOURCE_UID, panel.title
        for target in panel.targets or []:
            assert isinstance(target, influxql.InfluxQLQuery), f"{panel.title}: {target!r}"
    for annotation in board.get("annotations", {}).get("list", []):
        assert set(annotation["target"]) == INFLUX_ANNOTATION_TARGET, annotation["name"]
        assert annotation["datasource"]["uid"] == influxql.DATASOURCE_UID


def test_every_dashboard_has_uid_title_and_unique_panel_ids(board):
    assert board["uid"].startswith("printfarm-") and len(board["uid"]) <= 40 and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_panels_do_not_overlap_and_fit_the_24_column_grid(board):
    cells = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_template_variables_are_county_organisation_site_and_printer_from_tag_values(board):
    names = [v["name"] for v in board["templating"]["list"]]
    assert names[:3] == ["county", "organisation", "site"]
    assert set(names) <= {"county", "organisation", "site", "printer"}
    source = '"rollups"."utilisation"' if board["uid"] in {"printfarm-utilisation", "printfarm-funder"} else '"telemetry"'
    source = '"autogen"."printer_info"' if board["uid"] == "printfarm-directory" else source
    for var in board["templating"]["list"]:
        assert var["query"].startswith(f"SHOW TAG VALUES FROM {source} WITH KEY = ")
        assert var["multi"] and var["includeAll"]


def test_long_kept_measurements_are_read_from_their_retention_policy(board):
    """With [retention] telemetry set, the default policy holds only telemetry: a query of state,
    job, alert or agent that did not name "autogen" would find nothing."""
    queries = [t["query"] for p in board["panels"] for t in p.get("targets", [])]
    queries += [a["target"]["query"] for a in board.get("annotations", {}).get("list", [])]
    for query in queries:
        for source in re.findall(r'FROM\s+((?:"\w+"\.)?"?\w+"?)', query):
            assert source in ('"telemetry"', '"rollups"."utilisation"') or source.startswith('"autogen".'), query


def test_a_type_error_in_a_panel_is_reported():
    board = _load(DASHBOARD_FILES[0])
    board["panels"][0]["gridPos"]["w"] = "wide"
    assert any("grid_pos.w" in e for e in type_errors(dashboard.Dashboard.from_json(board)))


def test_an_unknown_panel_key_is_reported():
    board = _load(DASHBOARD_FILES[0])
    board["panels"][0]["tilte"] = "typo"
    decoded = json.loads(json.dumps(dashboard.Dashboard.from_json(board), cls=JSONEncoder))
    assert any("tilte" in e for e in _lost(board, decoded))


# -- provisioning ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def provisioned(tmp_path_factory) -> Path:
    """The provisioning files the generator writes for examples/fleet.toml once grafana-setup
    has made the three organisations (Grafana org IDs as it records them)."""
    tmp = tmp_path_factory.mktemp("provisioning")
    ids = tmp / "org-ids.json"
    ids.write_text(json.dumps({org.id: n for n, org in enumerate(_expected_orgs(), start=2)}))
    for path, text in generate.render(org_ids=ids, provisioning=tmp / "provisioning").items():
        if path.is_relative_to(tmp):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return tmp / "provisioning"


def _provisioning(folder: Path, kind: str) -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((folder / kind).glob("*.yaml"))}


def _expected_orgs() -> list:
    return grafana_orgs.from_inventory(generate.DEFAULT_INVENTORY)


def test_every_organisation_and_the_network_have_a_datasource_and_a_dashboard_provider_file(provisioned):
    names = {"network"} | {f"org-{org.id}" for org in _expected_orgs()}
    assert len(names) == 4  # examples/fleet.toml: three organisations
    assert set(_provisioning(provisioned, "datasources")) == names
    assert set(_provisioning(provisioned, "dashboards")) == names


def test_committed_are_only_the_networks_files_so_a_fresh_grafana_starts():
    """Grafana refuses to start with a provisioning file for an organisation it does not have."""
    assert set(_provisioning(PROVISIONING, "datasources")) == {"network"}
    assert set(_provisioning(PROVISIONING, "dashboards")) == {"network"}
    assert _provisioning(PROVISIONING, "datasources")["network"]["datasources"][0]["orgId"] == 1


def test_each_datasource_file_has_the_keys_grafana_requires_and_its_own_reader_and_database(provisioned):
    readers, databases, org_ids = set(), set(), set()
    for stem, doc in _provisioning(provisioned, "datasources").items():
        assert doc["apiVersion"] == 1
        (source,) = doc["datasources"]
        assert {"name", "type", "access", "url", "uid", "orgId"} <= set(source), stem
        assert isinstance(source["orgId"], int) and source["orgId"] >= 1
        assert source["type"] == influxql.DATASOURCE_TYPE and source["uid"] == influxql.DATASOURCE_UID
        assert source["access"] in ("proxy", "direct") and source["editable"] is False
        assert source["jsonData"].get("version", "InfluxQL") == "InfluxQL"
        org = None if stem == "network" else stem.removeprefix("org-")
        user, database = ((NETWORK_READER, "printfarm") if org is None
                          else (org_reader(org), org_database("printfarm", org)))
        assert (source["user"], source["jsonData"]["dbName"]) == (user, database), stem
        password = source["secureJsonData"]["password"]
        assert re.fullmatch(r"\$__file\{/[^{}]+/" + re.escape(user) + r"\}", password), f"{stem}: {password}"
        readers.add(user), databases.add(database), org_ids.add(source["orgId"])
    count = len(_provisioning(provisioned, "datasources"))
    assert len(readers) == len(databases) == len(org_ids) == count, "an organisation shares another's credentials"
    network = _provisioning(provisioned, "datasources")["network"]
    assert network["datasources"][0]["orgId"] == grafana_orgs.NETWORK_ORG_ID


def test_each_dashboard_provider_serves_its_organisation_the_mounted_json(provisioned):
    compose = yaml.safe_load((ROOT / "deploy" / "central" / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    mount = next(m.split(":")[1] for m in mounts if "dashboards/json" in m.split(":")[0])
    sources = {stem: doc["datasources"][0]["orgId"] for stem, doc in _provisioning(provisioned, "datasources").items()}
    names = []
    for stem, doc in _provisioning(provisioned, "dashboards").items():
        assert doc["apiVersion"] == 1
        (provider,) = doc["providers"]
        assert {"name", "type", "options", "orgId"} <= set(provider) and provider["type"] == "file"
        assert provider["orgId"] == sources[stem], f"{stem}: dashboards and data source in different orgs"
        folder = "network" if stem == "network" else "organisation"
        assert provider["options"]["path"] == f"{mount}/{folder}", stem
        assert (JSON_DIR / folder).is_dir()
        names.append(provider["name"])
    assert len(names) == len(set(names)), "Grafana needs unique provider names"


def test_the_committed_provisioning_is_what_the_generator_writes_for_the_example_inventory():
    assert generate.stale_files(generate.render()) == []


def test_organisation_ids_come_from_an_organisations_table_where_the_inventory_has_one(tmp_path):
    inventory = tmp_path / "fleet.toml"
    inventory.write_text('''
[organisations.oru]
name = "Örebro universitet"
[sites.a]
organisation = "Örebro universitet"
county = "Örebro"
[sites.b]
organisation = "oru"
county = "Örebro"
[sites.c]
organisation = "Mälardalens universitet"
county = "Västmanland"
''')
    found = grafana_orgs.from_inventory(inventory)
    assert [(o.id, o.name) for o in found] == [("malardalens-universitet", "Mälardalens universitet"),
                                                ("oru", "Örebro universitet")]
    ids = {"oru": 2, "malardalens-universitet": 3}
    rendered = generate.render_provisioning(found, ids, "http://i:8086", "pf", "/s")
    source = rendered["datasources/org-oru.yaml"]["datasources"][0]
    assert (source["user"], source["jsonData"]["dbName"]) == ("reader_oru", "pf_oru")


def test_only_organisations_grafana_setup_recorded_get_provisioning_files(tmp_path):
    found = [grafana_orgs.Org("a", "A"), grafana_orgs.Org("b", "B")]
    assert grafana_orgs.grafana_ids(found, None) == {}
    ids = tmp_path / "ids.json"
    ids.write_text('{"b": 5, "x": 3}')
    assert grafana_orgs.grafana_ids(found, ids) == {"b": 5}


def test_an_inventory_whose_site_has_no_organisation_is_a_config_error_naming_the_key(tmp_path):
    inventory = tmp_path / "fleet.toml"
    inventory.write_text('[sites.a]\ncounty = "Örebro"\n')
    assert generate.main(["--check", "--inventory", str(inventory)]) == 2
    with pytest.raises(ConfigError, match="sites.a.organisation"):
        grafana_orgs.from_inventory(inventory)


# -- Grafana's macros, as the integration test expands them ---------------------------------------

def test_several_values_become_an_escaped_alternation():
    assert macros.format_variable(["a.b", "Luleå (LTU)"], True) == r"(a\.b|Luleå \(LTU\))"
    assert macros.format_variable(["x/y"], True) == r"x\/y"
    assert macros.format_variable(["plain"], False) == "plain"


def test_macros_are_substituted_and_an_unknown_variable_is_an_error():
    q = macros.substitute("SELECT x WHERE $timeFilter GROUP BY time($__interval) LIMIT $__interval_ms",
                          0, 3_600_000, {})
    assert q == "SELECT x WHERE time >= 0ms and time <= 3600000ms GROUP BY time(5s) LIMIT 5000"
    with pytest.raises(KeyError):
        macros.substitute("WHERE site =~ /^$sight$/", 0, 1, {"site": "a"})
