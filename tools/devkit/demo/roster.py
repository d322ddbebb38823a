"""The demo's regional fleet: ACES — Additive Coordination in East middle Sweden (33 printers at 12
sites in all eight counties, most of them in Örebro län), and synthetic fleets for benchmarks.

Public bodies carry their real names; the site names within them are illustrative. The companies
are fictional: Bergslagens Mekaniska AB, the workshop sharing its capacity, does not exist.
"""

from __future__ import annotations

import json
from pathlib import Path

# site id -> (name, organisation, county, [(printer id, model, printer API), ...]); the API is the
# printer's real one: the agent's printer ``type`` and what the simulator speaks for it.
Fleet = dict[str, tuple[str, str, str, list[tuple[str, str, str]]]]
DEMO_SITES: Fleet = {
    # Örebro län
    "ansp-lab": ("Alfred Nobel Science Park, Prototyplabbet", "Alfred Nobel Science Park", "Örebro", [
        ("ansp-xl-01", "Prusa XL", "prusalink"), ("ansp-coreone-01", "Prusa Core One", "prusalink"),
        ("ansp-coreone-02", "Prusa Core One", "prusalink"), ("ansp-x1c-01", "Bambu Lab X1C", "bambu"),
        ("ansp-x1c-02", "Bambu Lab X1C", "bambu"), ("ansp-voron-01", "Voron 2.4", "moonraker")]),
    "oru-makerspace": ("Örebro universitet, Makerspace", "Örebro universitet", "Örebro", [
        ("oru-mk4-01", "Prusa MK4", "prusalink"), ("oru-mk4-02", "Prusa MK4", "prusalink"),
        ("oru-mk4-03", "Prusa MK4", "prusalink"), ("oru-mini-01", "Prusa MINI+", "prusalink"),
        ("oru-p1s-01", "Bambu Lab P1S", "bambu")]),
    "orebro-bibliotek": ("Örebro stadsbibliotek, Makerspace", "Örebro kommun", "Örebro", [
        ("obib-a1-01", "Bambu Lab A1", "bambu"), ("obib-a1-02", "Bambu Lab A1", "bambu"),
        ("obib-mini-01", "Prusa MINI+", "prusalink")]),
    "rudbeck-teknik": ("Rudbecksskolan, teknikprogrammet", "Örebro kommun", "Örebro", [
        ("rud-ender-01", "Creality Ender-3 V2", "octoprint"), ("rud-ender-02", "Creality Ender-3 V2", "octoprint"),
        ("rud-mk3-01", "Prusa i3 MK3S+", "octoprint")]),
    "bergslagen-verkstad": ("Bergslagens Mekaniska AB, verkstaden i Lindesberg", "Bergslagens Mekaniska AB",
                            "Örebro", [
        ("bmek-k1-01", "Creality K1", "moonraker"), ("bmek-x1c-01", "Bambu Lab X1C", "bambu")]),
    # the rest of east and north middle Sweden
    "mdu-vasteras": ("Mälardalens universitet, Prototyplabbet Västerås", "Mälardalens universitet", "Västmanland", [
        ("mdu-mk4-01", "Prusa MK4", "prusalink"), ("mdu-trident-01", "Voron Trident", "moonraker")]),
    "uu-angstrom": ("Uppsala universitet, Ångströmlaboratoriet", "Uppsala universitet", "Uppsala", [
        ("uu-coreone-01", "Prusa Core One", "prusalink"), ("uu-p1s-01", "Bambu Lab P1S", "bambu")]),
    "eskilstuna-bibliotek": ("Eskilstuna stadsbibliotek, Makerspace", "Eskilstuna kommun", "Södermanland", [
        ("esk-mini-01", "Prusa MINI+", "prusalink"), ("esk-a1-01", "Bambu Lab A1", "bambu")]),
    "liu-makerspace": ("Linköpings universitet, Makerspace", "Linköpings universitet", "Östergötland", [
        ("liu-mk4-01", "Prusa MK4", "prusalink"), ("liu-ratrig-01", "RatRig V-Core 3.1", "moonraker")]),
    "kau-makerspace": ("Karlstads universitet, Makerspace", "Karlstads universitet", "Värmland", [
        ("kau-mk4-01", "Prusa MK4", "prusalink"), ("kau-ender-01", "Creality Ender-3 S1", "octoprint")]),
    "du-borlange": ("Högskolan Dalarna, labbet i Borlänge", "Högskolan Dalarna", "Dalarna", [
        ("du-x1c-01", "Bambu Lab X1C", "bambu"), ("du-mk3-01", "Prusa i3 MK3S+", "octoprint")]),
    "hig-gavle": ("Högskolan i Gävle, Prototyplabbet", "Högskolan i Gävle", "Gävleborg", [
        ("hig-k1-01", "Creality K1", "moonraker"), ("hig-mk4-01", "Prusa MK4", "prusalink")]),
}

DEMO_OUTAGE_SITE = "rudbeck-teknik"
# Universities and university colleges: research organisations (the funder's RCO10 counts the
# companies whose jobs ran on their printers).
RESEARCH_ORGANISATIONS = {"Örebro universitet", "Mälardalens universitet", "Uppsala universitet",
                          "Linköpings universitet", "Karlstads universitet", "Högskolan Dalarna", "Högskolan i Gävle"}


def demo_fleet() -> Fleet:
    return DEMO_SITES


def synthetic_fleet(printers: int, per_site: int = 20) -> Fleet:
    """``printers`` printers in sites of ``per_site``, spread over the ACES counties."""
    counties = ("Örebro", "Västmanland", "Uppsala", "Södermanland", "Östergötland", "Värmland", "Dalarna", "Gävleborg")
    fleet = {}
    for index in range((printers + per_site - 1) // per_site):
        site = f"site-{index:03d}"
        count = min(per_site, printers - index * per_site)
        fleet[site] = (f"Site {index}", f"Organisation {index % 9}", counties[index % len(counties)],
                       [(f"{site}-p{n:02d}", "Prusa MK4", "octoprint") for n in range(count)])
    return fleet


def write_inventory(path: Path, fleet: dict, extra: list[str] = ()) -> Path:
    """The collector's inventory for ``fleet``; ``extra`` lines (customers, attribution) go last."""
    lines = ["# written by printfarm-demo", ""]
    for site, (name, org, county, _) in fleet.items():
        lines += [f"[sites.{site}]", f"name = {json.dumps(name, ensure_ascii=False)}",
                  f"organisation = {json.dumps(org, ensure_ascii=False)}",
                  f"county = {json.dumps(county, ensure_ascii=False)}"]
        lines += ['organisation_kind = "research"', ""] if org in RESEARCH_ORGANISATIONS else [""]
    for site, (_, _, _, printers) in fleet.items():
        for printer, model, _ in printers:
            lines += [f"[printers.{printer}]", f'site = "{site}"', f"model = {json.dumps(model)}", ""]
    path.write_text("\n".join(lines + list(extra)), encoding="utf-8")
    return path


def printer_apis(fleet: Fleet) -> dict[str, str]:
    """printer id -> the API it speaks: its real one (the simulator speaks all four)."""
    return {printer: api for _, _, _, printers in fleet.values() for printer, _, api in printers}
