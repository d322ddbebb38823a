"""Every word a report shows, in English and Swedish. Keys are the same in both languages."""

from __future__ import annotations

LANGS = ("en", "sv")

COLUMNS = {
    "en": {
        "site": "Site", "printer": "Printer", "organisation": "Organisation", "county": "County",
        "network": "Network", "printers": "Printers",
        "in_network_h": "Hours in period (in network)", "available_h": "Available hours",
        "printing_h": "Printing hours", "paused_h": "Paused hours", "idle_h": "Idle hours",
        "error_h": "Error hours", "offline_h": "Offline hours", "unknown_h": "Unknown hours (no data)",
        "not_in_network_h": "Hours before first data (not yet in network)",
        "util_period": "Utilisation of period", "util_available": "Utilisation of available hours",
        "jobs_started": "Jobs started", "jobs_done": "Jobs completed", "jobs_failed": "Jobs failed",
        "jobs_cancelled": "Jobs cancelled", "filament_m_est": "Filament, estimate (m)",
        "users": "Distinct users", "organisations_served": "Organisations served",
        "month": "Month", "started": "Started", "ended": "Ended", "outcome": "Outcome", "file": "File",
        "user": "User", "duration_h": "Duration (h)", "error": "Error",
    },
    "sv": {
        "site": "Plats", "printer": "Skrivare", "organisation": "Organisation", "county": "Län",
        "network": "Nätverk", "printers": "Skrivare (antal)",
        "in_network_h": "Timmar i perioden (i nätverket)", "available_h": "Tillgängliga timmar",
        "printing_h": "Utskriftstimmar", "paused_h": "Pausade timmar", "idle_h": "Lediga timmar",
        "error_h": "Feltimmar", "offline_h": "Frånkopplade timmar", "unknown_h": "Okända timmar (data saknas)",
        "not_in_network_h": "Timmar före första data (ännu inte i nätverket)",
        "util_period": "Nyttjandegrad av perioden", "util_available": "Nyttjandegrad av tillgänglig tid",
        "jobs_started": "Jobb startade", "jobs_done": "Jobb klara", "jobs_failed": "Jobb misslyckade",
        "jobs_cancelled": "Jobb avbrutna", "filament_m_est": "Filament, uppskattning (m)",
        "users": "Unika användare", "organisations_served": "Organisationer som använt",
        "month": "Månad", "started": "Startad", "ended": "Avslutad", "outcome": "Utfall", "file": "Fil",
        "user": "Användare", "duration_h": "Varaktighet (h)", "error": "Fel",
    },
}

SHEETS = {
    "en": {"printer": "Printers", "site": "Sites", "organisation": "Organisations", "county": "Counties",
           "network": "Network", "jobs": "Jobs", "monthly": "Monthly", "about": "About"},
    "sv": {"printer": "Skrivare", "site": "Platser", "organisation": "Organisationer", "county": "Län",
           "network": "Nätverk", "jobs": "Jobb", "monthly": "Månader", "about": "Om rapporten"},
}

OUTCOMES = {
    "en": {"done": "completed", "failed": "failed", "cancelled": "cancelled", "running": "not finished in period"},
    "sv": {"done": "klar", "failed": "misslyckad", "cancelled": "avbruten", "running": "inte avslutad i perioden"},
}

TEXT = {
    "en": {
        "title": "Printer utilisation report", "period": "Period", "time_zone": "Time zone",
        "generated": "Generated", "network_all": "all printers", "notes": "Notes",
        "definitions": "Definitions", "none": "none", "na": "n/a",
        "chart_sites": "Utilisation per site", "chart_trend": "Printing hours per month",
        "chart_jobs": "Jobs by outcome", "hours": "hours", "jobs": "jobs", "share": "share",
        "of_period": "of period", "of_available": "of available hours",
        "summary": "Summary for the whole network",
    },
    "sv": {
        "title": "Rapport om skrivarnas nyttjande", "period": "Period", "time_zone": "Tidszon",
        "generated": "Skapad", "network_all": "alla skrivare", "notes": "Anmärkningar",
        "definitions": "Definitioner", "none": "inga", "na": "saknas",
        "chart_sites": "Nyttjandegrad per plats", "chart_trend": "Utskriftstimmar per månad",
        "chart_jobs": "Jobb per utfall", "hours": "timmar", "jobs": "jobb", "share": "andel",
        "of_period": "av perioden", "of_available": "av tillgänglig tid",
        "summary": "Sammanfattning för hela nätverket",
    },
}

DEFINITIONS = {
    "en": [
        "Time in each state is computed from the printers' state changes, exact to the second, "
        "clipped to the period.",
        "Printing hours: time in the states printing, finishing and cancelling. Paused, idle and error "
        "are counted separately; offline and unreachable count as offline.",
        "Unknown: time without any data from the printer (agent stopped, network down, printer silent). "
        "It is never counted as idle.",
        "Hours before first data: a printer added during the period is not counted before its first data.",
        "Hours in period (in network): the period's hours minus the hours before first data.",
        "Available hours: hours in period minus offline and unknown hours.",
        "Utilisation of period = printing hours ÷ hours in period. "
        "Utilisation of available hours = printing hours ÷ available hours.",
        "Jobs are counted by the time of their event: started when started, completed/failed/cancelled "
        "when they ended. A cancelled job is not also counted as failed.",
        "Filament is the slicer's estimate for completed jobs, not measured use.",
        "Distinct users: user accounts per site that started or ended a job. Organisations served: "
        "organisations owning a site where a job ran.",
    ],
    "sv": [
        "Tiden i varje tillstånd beräknas från skrivarnas tillståndsändringar, exakt på sekunden, "
        "avgränsad till perioden.",
        "Utskriftstimmar: tid i tillstånden skriver ut, avslutar och avbryter. Pausad, ledig och fel "
        "räknas för sig; frånkopplad och onåbar räknas som frånkopplad.",
        "Okänd: tid utan data från skrivaren (agenten stoppad, nätet nere, skrivaren tyst). "
        "Den räknas aldrig som ledig.",
        "Timmar före första data: en skrivare som lagts till under perioden räknas inte före sin första data.",
        "Timmar i perioden (i nätverket): periodens timmar minus timmarna före första data.",
        "Tillgängliga timmar: timmar i perioden minus frånkopplade och okända timmar.",
        "Nyttjandegrad av perioden = utskriftstimmar ÷ timmar i perioden. "
        "Nyttjandegrad av tillgänglig tid = utskriftstimmar ÷ tillgängliga timmar.",
        "Jobb räknas vid tidpunkten för händelsen: startade när de startade, klara/misslyckade/avbrutna "
        "när de slutade. Ett avbrutet jobb räknas inte också som misslyckat.",
        "Filament är slicerns uppskattning för klara jobb, inte uppmätt förbrukning.",
        "Unika användare: användarkonton per plats som startat eller avslutat ett jobb. Organisationer som "
        "använt: organisationer som äger en plats där ett jobb körts.",
    ],
}

NOTES = {
    "en": {
        "running_period": "The period has not ended: figures are counted up to {as_of:%Y-%m-%d %H:%M}.",
        "no_data": "No state changes or job events were recorded in this period.",
        "no_printers": "No printers: the inventory is empty and the database holds no printer data.",
        "unknown_site": "Site {site} is not in the inventory: organisation and county are '{unknown}' "
                        "for its printers ({printers}).",
        "not_in_inventory": "Printer {printer} is not in the inventory; its data is counted under the site it reported.",
        "never_reported": "Printer {printer} has never sent data up to the end of the period.",
        "first_data": "Printer {printer} sent its first data on {when:%Y-%m-%d %H:%M}; "
                      "the {hours:.2f} hours before are not counted (not yet in network).",
        "silent": "Printer {printer} sent no data in this period: all its hours are unknown.",
        "gaps": "Printer {printer} has {hours:.2f} hours without data in {gaps} gap(s), counted as unknown.",
    },
    "sv": {
        "running_period": "Perioden har inte slutat: siffrorna gäller fram till {as_of:%Y-%m-%d %H:%M}.",
        "no_data": "Inga tillståndsändringar eller jobbhändelser registrerades under perioden.",
        "no_printers": "Inga skrivare: inventariet är tomt och databasen saknar skrivardata.",
        "unknown_site": "Platsen {site} finns inte i inventariet: organisation och län är '{unknown}' "
                        "för dess skrivare ({printers}).",
        "not_in_inventory": "Skrivaren {printer} finns inte i inventariet; dess data räknas under platsen den rapporterade.",
        "never_reported": "Skrivaren {printer} har aldrig skickat data fram till periodens slut.",
        "first_data": "Skrivaren {printer} skickade sin första data {when:%Y-%m-%d %H:%M}; "
                      "de {hours:.2f} timmarna före räknas inte (ännu inte i nätverket).",
        "silent": "Skrivaren {printer} skickade ingen data under perioden: alla dess timmar är okända.",
        "gaps": "Skrivaren {printer} har {hours:.2f} timmar utan data i {gaps} avbrott, räknade som okända.",
    },
}


def check(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r}: use one of {', '.join(LANGS)}")
    return lang


def note_text(note, lang: str) -> str:
    return NOTES[lang][note.code].format(**note.args)
