"""Customers in the inventory and attribution of jobs to them: a pure function of
(site, printer, user, file, time); config errors that name the key and the fix."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from common.configkit import ConfigError
from server import inventory as inventory_mod
from server.attribution import Attribution
from server.customers import luhn_ok
from common.pseudonyms import Pseudonyms

STHLM = ZoneInfo("Europe/Stockholm")
PSEUDONYMS = Pseudonyms("0123456789abcdef0123456789abcdef")


def ms(text: str) -> int:
    """'2026-08-15 00:30' Stockholm time -> ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=STHLM).timestamp() * 1000)


def inventory(tmp_path=None, bookings: str | None = None, **attribution) -> inventory_mod.Inventory:
    data = {
        "sites": {"lab": {"organisation": "Örebro universitet", "county": "Örebro"},
                  "park": {"organisation": "Alfred Nobel Science Park", "county": "Örebro"}},
        "printers": {"p1": {"site": "lab"}, "x1": {"site": "park"}, "x2": {"site": "park"}},
        "customers": {
            "kilsberg": {"name": "Kilsbergens Verktyg AB", "kind": "company", "size": "small_medium",
                         "county": "Örebro", "org_number": "5566778899"},
            "uni": {"name": "Örebro universitet", "kind": "academia", "county": "Örebro"},
            "makers": {"name": "Uppsala Makers", "kind": "association", "county": "Uppsala"},
        },
        "attribution": attribution,
    }
    if bookings is not None:
        (tmp_path / "bookings.csv").write_text(bookings)
        data["attribution"]["bookings"] = "bookings.csv"
    return inventory_mod.from_dict(data, "fleet.toml", base=tmp_path)


ACCOUNTS = [{"site": "lab", "user": "anna", "customer": "kilsberg"},
            {"site": "lab", "user": "anna", "customer": "uni", "from": "2026-08-15"},
            {"site": "lab", "user": "anna", "from": "2026-10-01"}]


def test_an_account_moves_to_another_customer_at_local_midnight_of_its_date_and_can_end():
    a = Attribution(inventory(accounts=ACCOUNTS), PSEUDONYMS)
    assert a.customer("lab", "p1", "anna", "x.gcode", ms("2026-08-14 23:59")) == "kilsberg"
    assert a.customer("lab", "p1", "anna", "x.gcode", ms("2026-08-15 00:00")) == "uni"
    assert a.customer("lab", "p1", "anna", "x.gcode", ms("2026-10-01 00:00")) is None  # she left: no one
    assert a.customer("park", "x1", "anna", "x.gcode", ms("2026-08-01 12:00")) is None  # accounts are per site
    assert a.customer("lab", "p1", "bo", "x.gcode", ms("2026-08-01 12:00")) is None  # unattributed, not guessed


def test_accounts_match_the_pseudonym_the_database_holds_and_may_be_written_as_one():
    a = Attribution(inventory(accounts=ACCOUNTS), PSEUDONYMS)
    assert a.customer("lab", "p1", PSEUDONYMS.of("lab", "anna"), None, ms("2026-08-01 12:00")) == "kilsberg"
    written = [{"site": "lab", "user": PSEUDONYMS.of("lab", "bo"), "customer": "makers"}]
    b = Attribution(inventory(accounts=written), PSEUDONYMS)
    assert b.customer("lab", "p1", "bo", None, 0) == b.customer("lab", "p1", PSEUDONYMS.of("lab", "bo"), None, 0) == "makers"


@pytest.mark.parametrize("file, expected", [
    ("bracket [kilsberg].gcode", "kilsberg"), ("[KILSBERG]BRACKET.GCO", "kilsberg"), ("part [v2].gcode", None),
    ("a [kilsberg] b [uni].gcode", None), ("a [kilsberg] [kilsberg].3mf", "kilsberg"), ("kilsberg.gcode", None),
])
def test_a_file_name_tag_names_a_known_customer_in_brackets_and_two_customers_name_none(file, expected):
    a = Attribution(inventory(), PSEUDONYMS)
    assert a.customer("lab", "p1", None, file, 0) == expected


BOOKINGS = """site,printer,from,to,customer
park,x1,2026-07-20,2026-07-24,makers
park,,2026-09-07T08:00,2026-09-07T17:00,uni
park,x1,2026-07-22,2026-07-26,makers
"""


def test_a_booking_holds_from_its_start_through_its_last_day_and_a_site_booking_holds_every_printer(tmp_path):
    a = Attribution(inventory(tmp_path, BOOKINGS), PSEUDONYMS)
    assert a.customer("park", "x1", None, None, ms("2026-07-19 23:59")) is None
    assert a.customer("park", "x1", None, None, ms("2026-07-20 00:00")) == "makers"
    assert a.customer("park", "x1", None, None, ms("2026-07-26 23:59")) == "makers"  # overlapping, same customer
    assert a.customer("park", "x1", None, None, ms("2026-07-27 00:00")) is None
    assert a.customer("park", "x2", None, None, ms("2026-07-21 10:00")) is None  # another printer
    assert a.customer("park", "x2", None, None, ms("2026-09-07 08:00")) == "uni"
    assert a.customer("park", "x1", None, None, ms("2026-09-07 17:00")) is None  # a time as end is excluded


def test_when_ways_disagree_the_configured_order_decides(tmp_path):
    accounts = [{"site": "park", "user": "lab", "customer": "kilsberg"}]
    default = Attribution(inventory(tmp_path, BOOKINGS, accounts=accounts), PSEUDONYMS)
    at = ms("2026-07-21 10:00")
    assert default.answers("park", "x1", "lab", "ring [uni].gcode", at) == \
        {"tag": "uni", "booking": "makers", "account": "kilsberg"}
    assert default.customer("park", "x1", "lab", "ring [uni].gcode", at) == "uni"
    assert default.customer("park", "x1", "lab", "ring.gcode", at) == "makers"
    assert default.customer("park", "x1", "lab", "ring.gcode", ms("2026-08-21 10:00")) == "kilsberg"
    accounts_first = Attribution(inventory(tmp_path, BOOKINGS, accounts=accounts, order=["account", "tag"]),
                                 PSEUDONYMS)
    assert accounts_first.customer("park", "x1", "lab", "ring [uni].gcode", at) == "kilsberg"
    assert accounts_first.customer("park", "x1", "bo", "ring.gcode", at) is None  # bookings left out of the order


@pytest.mark.parametrize("number, ok", [("556677-8899", True), ("5566778899", True), ("212000-1355", True),
                                        ("556677-8898", False), ("55667788", False), ("800101-1234", None)])
def test_organisation_numbers_are_checked_by_their_luhn_digit_and_personal_numbers_refused(number, ok):
    customer = {"name": "X AB", "kind": "company", "size": "large", "county": "Örebro", "org_number": number}
    if ok:
        inv = inventory_mod.from_dict({"customers": {"x": customer}})
        assert inv.customers["x"].org_number == number[:6] + "-" + number.replace("-", "")[6:]
        return
    with pytest.raises(ConfigError) as err:
        inventory_mod.from_dict({"customers": {"x": customer}}, "fleet.toml")
    assert err.value.key == "customers.x.org_number"
    assert ("personal identity number" in err.value.problem) == (ok is None)


def test_luhn():
    assert luhn_ok("5566778899") and not luhn_ok("5566778890") and luhn_ok("2120001355")


BAD_CUSTOMERS = [
    ({"name": "X", "kind": "firm", "county": "Örebro"}, "customers.x.kind", "use one of company, academia"),
    ({"name": "X", "kind": "company", "county": "Örebro"}, "customers.x.size", "set size = 'small_medium'"),
    ({"name": "X", "kind": "academia", "size": "large", "county": "Örebro"}, "customers.x.size", "remove it"),
    ({"name": "X", "kind": "public", "county": "Örebro län"}, "customers.x.county", "write 'Örebro'"),
    ({"name": "X", "kind": "public", "county": "Narnia"}, "customers.x.county", "without 'län'"),
    ({"kind": "public", "county": "Örebro"}, "customers.x.name", "write the organisation's name"),
    ({"name": "Anna Andersson", "kind": "private", "county": "Örebro"}, "customers.x.name", "remove it"),
    ({"kind": "private", "county": "Örebro", "org_number": "5566778899"}, "customers.x.org_number", "remove it"),
    ({"name": "X", "kind": "public", "county": "Örebro", "colour": "red"}, "customers.x.colour", "remove it"),
]


@pytest.mark.parametrize("customer, key, fix", BAD_CUSTOMERS)
def test_customer_config_errors_name_the_key_and_the_fix(customer, key, fix):
    with pytest.raises(ConfigError) as err:
        inventory_mod.from_dict({"customers": {"x": customer}}, "fleet.toml")
    assert err.value.key == key and fix in err.value.fix, err.value.line()
    assert err.value.line().startswith(f"fleet.toml: {key}: ")


BAD_ATTRIBUTION = [
    ({"order": ["tag", "guess"]}, "attribution.order", "list each of tag, booking, account"),
    ({"tz": "Mars/Olympus"}, "attribution.tz", "IANA zone"),
    ({"accounts": [{"site": "nowhere", "user": "a", "customer": "uni"}]}, "attribution.accounts[0].site", "[sites]"),
    ({"accounts": [{"site": "lab", "user": "a", "customer": "acme"}]}, "attribution.accounts[0].customer",
     "add a [customers.acme] table"),
    ({"accounts": [{"site": "lab", "user": "a", "customer": "uni", "from": "15/8"}]}, "attribution.accounts[0].from",
     "2026-08-15"),
    ({"accounts": [{"site": "lab", "user": "a", "customer": "uni"}, {"site": "lab", "user": "a", "customer": "makers"}]},
     "attribution.accounts[1].from", "its own date"),
    ({"accounts": [{"site": "lab", "customer": "uni"}]}, "attribution.accounts[0].user", "add this required key"),
]


@pytest.mark.parametrize("table, key, fix", BAD_ATTRIBUTION)
def test_attribution_config_errors_name_the_key_and_the_fix(table, key, fix):
    with pytest.raises(ConfigError) as err:
        inventory(**table)
    assert err.value.key == key and fix in err.value.fix, err.value.line()


BAD_BOOKINGS = [
    ("site,printer,from,customer\n", "attribution.bookings", "site,printer,from,to,customer"),
    ("site,printer,from,to,customer\nmoon,x1,2026-07-20,2026-07-24,makers\n",
     "attribution.bookings: line 2: site", "[sites]"),
    ("site,printer,from,to,customer\npark,p1,2026-07-20,2026-07-24,makers\n",
     "attribution.bookings: line 2: printer", "leave it empty to book the whole site"),
    ("site,printer,from,to,customer\npark,x1,2026-07-20,2026-07-24,acme\n",
     "attribution.bookings: line 2: customer", "[customers]"),
    ("site,printer,from,to,customer\npark,x1,20 July,2026-07-24,makers\n",
     "attribution.bookings: line 2: from", "2026-08-15"),
    ("site,printer,from,to,customer\npark,x1,2026-07-24,2026-07-20,makers\n",
     "attribution.bookings: line 2: to", "an end after the start"),
    ("site,printer,from,to,customer\npark,x1,2026-07-20,2026-07-24,makers\n\npark,,2026-07-22,2026-07-22,uni\n",
     "attribution.bookings: line 4", "not overlap"),
]


@pytest.mark.parametrize("text, key, fix", BAD_BOOKINGS)
def test_bookings_file_errors_name_the_line_the_column_and_the_fix(tmp_path, text, key, fix):
    with pytest.raises(ConfigError) as err:
        inventory(tmp_path, text)
    assert err.value.key == key and fix in err.value.fix, err.value.line()
    assert str(tmp_path / "bookings.csv") in err.value.line()


def test_a_missing_bookings_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError) as err:
        inventory_mod.from_dict({"attribution": {"bookings": "nope.csv"}}, "fleet.toml", base=tmp_path)
    assert err.value.key == "attribution.bookings" and "create it" in err.value.fix


def test_check_config_prints_a_customer_error_in_one_line_with_the_file_key_and_fix(tmp_path, capsys):
    from server.__main__ import main

    (tmp_path / "server.toml").write_text(f'inventory = "fleet.toml"\nstate_dir = "{tmp_path / "state"}"\n')
    (tmp_path / "fleet.toml").write_text('[customers.acme]\nname = "Acme AB"\nkind = "company"\ncounty = "Örebro"\n')
    assert main(["check-config", "-c", str(tmp_path / "server.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"config error: {tmp_path / 'fleet.toml'}: customers.acme.size: is missing for a company — "
                   "fix: set size = 'small_medium' (fewer than 250 staff) or 'large'")
    (tmp_path / "fleet.toml").write_text('[customers.acme]\nname = "Acme AB"\nkind = "company"\ncounty = "Örebro"\n'
                                         'size = "large"\n[attribution]\nbookings = "b.csv"\n')
    (tmp_path / "b.csv").write_text("site,printer,from,to,customer\n")
    assert main(["check-config", "-c", str(tmp_path / "server.toml")]) == 0
    assert "1 customer(s), 0 account(s), 0 booking(s)" in capsys.readouterr().out
