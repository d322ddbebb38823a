"""The demo's regional fleet (24 printers, 6 sites, 4 counties) and synthetic fleets for benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

# site id -> (name, organisation, county, [(printer id, model, printer API), ...]); the API is
# the agent's printer ``type`` and what the simulator speaks for that printer.
Fleet = dict[str, tuple[str, str, str, list[tuple[str, str, str]]]]
DEMO_SITES: Fleet = {
    "umu-makerspace": ("Umeå universitetsbibliotek Makerspace", "Umeå universitet", "Västerbotten", [
        ("umu-mk4-01", "Prusa MK4", "octoprint"), ("umu-mk4-02", "Prusa MK4", "octoprint"), ("umu-mk4-03", "Prusa MK4", "octoprint"),
        ("umu-mini-01", "Prusa MINI+", "octoprint"), ("umu-ender-01", "Creality Ender-3 V2", "octoprint")]),
    "skelleftea-bibliotek": ("Skellefteå stadsbibliotek, Kreativ verkstad", "Skellefteå kommun", "Västerbotten", [
        ("ske-mk3-01", "Prusa i3 MK3S+", "octoprint"), ("ske-mk3-02", "Prusa i3 MK3S+", "octoprint"), ("ske-mini-01", "Prusa MINI+", "octoprint")]),
    "ltu-fablab": ("LTU Fab Lab Luleå", "Luleå tekniska universitet", "Norrbotten", [
        ("ltu-mk4-01", "Prusa MK4", "octoprint"), ("ltu-mk4-02", "Prusa MK4", "octoprint"), ("ltu-mk3-01", "Prusa i3 MK3S+", "octoprint"),
        ("ltu-voron-01", "Voron 2.4 (Klipper)", "moonraker"), ("ltu-ender-01", "Creality Ender-3 S1", "octoprint")]),
    "kiruna-gymnasium": ("Hjalmar Lundbohmsskolan, teknikprogrammet", "Kiruna kommun", "Norrbotten", [
        ("kir-ender-01", "Creality Ender-3 V2", "octoprint"), ("kir-ender-02", "Creality Ender-3 V2", "octoprint"),
        ("kir-mini-01", "Prusa MINI+", "octoprint")]),
    "miun-prototyplab": ("Mittuniversitetet Prototyplabb Sundsvall", "Mittuniversitetet", "Västernorrland", [
        ("miun-mk4-01", "Prusa MK4", "octoprint"), ("miun-mk4-02", "Prusa MK4", "octoprint"), ("miun-mk3-01", "Prusa i3 MK3S+", "octoprint"),
        ("miun-k1-01", "Creality K1 (Klipper)", "moonraker")]),
    "hjalpmedel-ostersund": ("Hjälpmedelscentrum Östersund", "Region Jämtland Härjedalen", "Jämtland", [
        ("rjh-mk4-01", "Prusa MK4", "octoprint"), ("rjh-mk4-02", "Prusa MK4", "octoprint"), ("rjh-mk4-03", "Prusa MK4", "octoprint"),
        ("rjh-mk4-04", "Prusa MK4", "octoprint")]),
}

DEMO_OUTAGE_SITE = "kiruna-gymnasium"


def demo_fleet() -> Fleet:
    return DEMO_SITES


def synthetic_fleet(printers: int, per_site: int = 20) -> Fleet:
    """``printers`` printers in sites of ``per_site``, spread over four counties."""
    counties = ("Västerbotten", "Norrbotten", "Västernorrland", "Jämtland")
    fleet = {}
    for index in range((printers + per_site - 1) // per_site):
        site = f"site-{index:03d}"
        count = min(per_site, printers - index * per_site)
        fleet[site] = (f"Site {index}", f"Organisation {index % 9}", counties[index % len(counties)],
                       [(f"{site}-p{n:02d}", "Prusa MK4", "octoprint") for n in range(count)])
    return fleet


def write_inventory(path: Path, fleet: dict) -> Path:
    lines = ["# written by printfarm-demo", ""]
    for site, (name, org, county, _) in fleet.items():
        lines += [f"[sites.{site}]", f"name = {json.dumps(name, ensure_ascii=False)}",
                  f"organisation = {json.dumps(org, ensure_ascii=False)}",
                  f"county = {json.dumps(county, ensure_ascii=False)}", ""]
    for site, (_, _, _, printers) in fleet.items():
        for printer, model, _ in printers:
            lines += [f"[printers.{printer}]", f'site = "{site}"', f"model = {json.dumps(model)}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def printer_apis(fleet: Fleet) -> dict[str, str]:
    """printer id -> the API it speaks."""
    return {printer: api for _, _, _, printers in fleet.values() for printer, _, api in printers}
