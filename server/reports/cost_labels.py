"""The words of the material, cost and outcome sheets, in English and Swedish (merged into
labels.py's tables)."""

from __future__ import annotations

COLUMNS = {
    "en": {
        "job_ended": "Ended", "job_started": "Started", "customer_name": "Customer", "material": "Material",
        "grams": "Material (g)", "metres": "Filament (m)", "source": "Amount from", "job_hours": "Machine hours",
        "hour_rate": "Hour rate", "machine_cost": "Machine cost", "material_cost": "Material cost",
        "start_fee": "Start fee", "cost": "Cost", "currency": "Currency", "cause": "Cause",
        "jobs_ended": "Jobs ended",
        "success_rate": "Success rate", "grams_wasted": "Material wasted (g)", "group": "By", "name": "Name",
        "price_per_kg": "Price per kg", "density": "Density (g/cm³)",
    },
    "sv": {
        "job_ended": "Avslutad", "job_started": "Startad", "customer_name": "Kund", "material": "Material",
        "grams": "Material (g)", "metres": "Filament (m)", "source": "Mängd enligt", "job_hours": "Maskintimmar",
        "hour_rate": "Timpris", "machine_cost": "Maskinkostnad", "material_cost": "Materialkostnad",
        "start_fee": "Startavgift", "cost": "Kostnad", "currency": "Valuta", "cause": "Orsak",
        "jobs_ended": "Avslutade jobb",
        "success_rate": "Andel lyckade", "grams_wasted": "Spillmaterial (g)", "group": "Per", "name": "Namn",
        "price_per_kg": "Pris per kg", "density": "Densitet (g/cm³)",
    },
}

SHEETS = {
    "en": {"billing": "Jobs to invoice", "cost_customers": "Cost per customer", "cost_organisations": "Cost per organisation",
           "materials": "Materials", "outcomes": "Outcomes", "failure_causes": "Failure causes"},
    "sv": {"billing": "Jobb att fakturera", "cost_customers": "Kostnad per kund", "cost_organisations": "Kostnad per organisation",
           "materials": "Material", "outcomes": "Utfall", "failure_causes": "Felorsaker"},
}

SOURCES = {
    "en": {"measured": "measured", "slicer": "slicer estimate", "mixed": "measured and slicer estimate", "": ""},
    "sv": {"measured": "uppmätt", "slicer": "slicerns uppskattning", "mixed": "uppmätt och slicerns uppskattning", "": ""},
}

GROUPS = {
    "en": {"printer": "printer", "material": "material", "kind": "customer kind", "unknown_material": "material not reported"},
    "sv": {"printer": "skrivare", "material": "material", "kind": "kundkategori", "unknown_material": "material ej rapporterat"},
}

CAUSES = {
    "en": {"thermal_runaway": "thermal runaway", "heater_not_heating": "heater not heating at expected rate",
           "mintemp": "MINTEMP (temperature too low)", "maxtemp": "MAXTEMP (temperature too high)",
           "mcu_shutdown": "MCU shutdown", "filament_runout": "filament runout", "cancelled": "cancelled",
           "connection_lost": "connection lost", "host_restart": "printer host restarted",
           "file_problem": "print file problem", "bambu_motion": "Bambu Lab: motion controller",
           "bambu_mainboard": "Bambu Lab: main board", "bambu_ams": "Bambu Lab: AMS", "bambu_toolhead": "Bambu Lab: toolhead",
           "bambu_camera": "Bambu Lab: camera/LiDAR", "bambu_ams_lite": "Bambu Lab: AMS lite",
           "bambu_other": "Bambu Lab: other module", "other": "other", "unknown": "not said"},
    "sv": {"thermal_runaway": "termisk rusning (thermal runaway)", "heater_not_heating": "värmaren värmer inte som väntat",
           "mintemp": "MINTEMP (för låg temperatur)", "maxtemp": "MAXTEMP (för hög temperatur)",
           "mcu_shutdown": "MCU-avstängning", "filament_runout": "filamentet tog slut", "cancelled": "avbruten",
           "connection_lost": "förlorad anslutning", "host_restart": "skrivarens värddator startades om",
           "file_problem": "fel i utskriftsfilen", "bambu_motion": "Bambu Lab: rörelsestyrning",
           "bambu_mainboard": "Bambu Lab: moderkort", "bambu_ams": "Bambu Lab: AMS", "bambu_toolhead": "Bambu Lab: skrivhuvud",
           "bambu_camera": "Bambu Lab: kamera/LiDAR", "bambu_ams_lite": "Bambu Lab: AMS lite",
           "bambu_other": "Bambu Lab: annan modul", "other": "annat", "unknown": "ej angivet"},
}

TEXT = {
    "en": {"cost_page": "Material, cost and outcomes", "private_person": "private person",
           "totals": "In total: {jobs} jobs ended, {grams} g material ({wasted} g wasted in failed and cancelled jobs), "
                     "{hours} machine hours, cost {cost} {currency}; success rate {rate}.",
           "all": "all"},
    "sv": {"cost_page": "Material, kostnad och utfall", "private_person": "privatperson",
           "totals": "Totalt: {jobs} avslutade jobb, {grams} g material ({wasted} g spill i misslyckade och avbrutna jobb), "
                     "{hours} maskintimmar, kostnad {cost} {currency}; andel lyckade {rate}.",
           "all": "alla"},
}

NOTES = {
    "en": {"no_price": "No price per kg in the inventory for {materials}: their material cost counts 0 ([materials.<TYPE>] price_per_kg).",
           "no_density": "Lengths of {materials} could not be made grams: no density known ([materials.<TYPE>] density).",
           "no_progress": "{n} failed or cancelled job material(s) with a slicer estimate and no progress at the end: not counted.",
           "no_rate": "No hour rate for {printers}: their machine cost counts 0 ([rates] hour_rate).",
           "unreadable_material": "{n} job(s) had material data that could not be read: not counted.",
           "spoolman": "Spoolman could not be read ({problem}): only the inventory's prices and densities were used.",
           "assumed": "{n} job material(s) without a type counted as [rates] assumed_material (density and price)."},
    "sv": {"no_price": "Inget kilopris i inventariet för {materials}: deras materialkostnad räknas som 0 ([materials.<TYP>] price_per_kg).",
           "no_density": "Längder av {materials} kunde inte räknas om till gram: ingen densitet känd ([materials.<TYP>] density).",
           "no_progress": "{n} materialuppgift(er) för misslyckade eller avbrutna jobb med slicerns uppskattning men utan förlopp vid slutet: inte räknade.",
           "no_rate": "Inget timpris för {printers}: deras maskinkostnad räknas som 0 ([rates] hour_rate).",
           "unreadable_material": "{n} jobb hade materialuppgifter som inte kunde läsas: inte räknade.",
           "spoolman": "Spoolman kunde inte läsas ({problem}): bara inventariets priser och densiteter användes.",
           "assumed": "{n} materialuppgift(er) utan materialtyp räknade som [rates] assumed_material (densitet och pris)."},
}
