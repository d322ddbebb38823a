"""Every word a report shows, in English and Swedish. Keys are the same in both languages. The
indicator report's words are in indicator_labels.py, merged in below."""

from __future__ import annotations

from server.reports import cost_labels, indicator_labels
from server.reports import maintenance as maintenance_labels

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
        "user": "User (pseudonym)", "user_name": "User", "duration_h": "Duration (h)", "error": "Error",
        "site_name": "Site name", "customer": "Customer", "org_number": "Organisation number",
        "kind": "Customer kind", "customer_county": "Customer's county", "sites_used": "Sites used",
        "customers_served": "Customers served", "enterprises_served": "Enterprises served",
        "enterprises_sme": "of which small and medium-sized", "enterprises_large": "of which large",
        "enterprises_previous": "Enterprises served in the previous period",
        "share_printing": "Share of printing hours", "jobs_unattributed": "Jobs without a customer (unattributed)",
        "figure": "Key figure", "this_period": "This period", "previous_period": "Previous period",
        "change": "Change",
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
        "user": "Användare (pseudonym)", "user_name": "Användare", "duration_h": "Varaktighet (h)", "error": "Fel",
        "site_name": "Platsens namn", "customer": "Kund", "org_number": "Organisationsnummer",
        "kind": "Kundtyp", "customer_county": "Kundens län", "sites_used": "Platser som använts",
        "customers_served": "Kunder", "enterprises_served": "Företag som använt",
        "enterprises_sme": "varav små och medelstora", "enterprises_large": "varav stora",
        "enterprises_previous": "Företag som använt föregående period",
        "share_printing": "Andel av utskriftstimmarna", "jobs_unattributed": "Jobb utan kund (ej tillskrivna)",
        "figure": "Nyckeltal", "this_period": "Perioden", "previous_period": "Föregående period",
        "change": "Förändring",
    },
}

SHEETS = {
    "en": {"printer": "Printers", "site": "Sites", "organisation": "Organisations", "county": "Counties",
           "network": "Network", "jobs": "Jobs", "monthly": "Monthly", "about": "About",
           "key_figures": "Key figures", "customers": "Customers", "customer_kinds": "Customer kinds",
           "customer_counties": "Customer counties", "site_counties": "Customers by site county",
           "enterprises": "Enterprises"},
    "sv": {"printer": "Skrivare", "site": "Platser", "organisation": "Organisationer", "county": "Län",
           "network": "Nätverk", "jobs": "Jobb", "monthly": "Månader", "about": "Om rapporten",
           "key_figures": "Nyckeltal", "customers": "Kunder", "customer_kinds": "Kundtyper",
           "customer_counties": "Kundernas län", "site_counties": "Kunder per platsens län",
           "enterprises": "Företag"},
}

KINDS = {
    "en": {"company_sme": "company, small or medium-sized", "company_large": "company, large",
           "academia": "academia", "public": "public sector", "association": "association",
           "private": "private person", "unattributed": "unattributed"},
    "sv": {"company_sme": "företag, litet eller medelstort", "company_large": "företag, stort",
           "academia": "akademi", "public": "offentlig sektor", "association": "förening",
           "private": "privatperson", "unattributed": "ej tillskrivet"},
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
        "yes": "yes", "no": "no", "private_persons": "private persons ({n})", "unattributed": "unattributed",
        "chart_customers": "Printing hours per customer kind", "customer_view": "Customers",
        "customer_kinds": "Per customer kind", "customer_counties": "Per county of the customer",
        "site_counties": "Per county of the site", "top_customers": "Customers by printing hours",
        "one_page_title": "Shared 3D printers: progress report", "previous": "previous period",
        "this": "this period",
        "util_per_county": "Utilisation per county (of available hours)", "notes_count": "Notes: {n} — "
        "see the full report ({file}).", "pp": "pp", "more": "… and {n} more",
    },
    "sv": {
        "title": "Rapport om skrivarnas nyttjande", "period": "Period", "time_zone": "Tidszon",
        "generated": "Skapad", "network_all": "alla skrivare", "notes": "Anmärkningar",
        "definitions": "Definitioner", "none": "inga", "na": "saknas",
        "chart_sites": "Nyttjandegrad per plats", "chart_trend": "Utskriftstimmar per månad",
        "chart_jobs": "Jobb per utfall", "hours": "timmar", "jobs": "jobb", "share": "andel",
        "of_period": "av perioden", "of_available": "av tillgänglig tid",
        "summary": "Sammanfattning för hela nätverket",
        "yes": "ja", "no": "nej", "private_persons": "privatpersoner ({n})", "unattributed": "ej tillskrivet",
        "chart_customers": "Utskriftstimmar per kundtyp", "customer_view": "Kunder",
        "customer_kinds": "Per kundtyp", "customer_counties": "Per kundens län",
        "site_counties": "Per platsens län", "top_customers": "Kunder efter utskriftstimmar",
        "one_page_title": "Delade 3D-skrivare: lägesrapport", "previous": "föregående period",
        "this": "perioden",
        "util_per_county": "Nyttjandegrad per län (av tillgänglig tid)", "notes_count": "Anmärkningar: {n} — "
        "se den fullständiga rapporten ({file}).", "pp": "p.e.", "more": "… och {n} till",
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
        "User names are shown as stable pseudonyms (a keyed hash per site and account), never as names.",
        "Customer: the organisation a job was for, from the job's file name tag [customer-id], a booking "
        "of the printer, or the user account's customer (in that order unless configured otherwise). A job "
        "no way names is unattributed: counted, never guessed.",
        "Printing hours per customer: the printer's printing time between the start and end of the "
        "customer's jobs. Printing time outside any job recorded in the period is unattributed.",
        "Enterprises served: customers of kind company with at least one job started or ended in the "
        "period, each once by its organisation number; size classes of Commission Recommendation "
        "2003/361/EC: micro fewer than 10 staff, small fewer than 50, medium-sized fewer than 250 (with the "
        "turnover and balance-sheet limits). Not served in the previous period: served now but not in the "
        "previous period of the same length. New enterprise (RCO05): registered less than three years before "
        "its first job in the project.",
        "Indicators (RCO01/CO01 enterprises supported, by size class; RCO04/CO04 with non-financial support, "
        "all of them: the network gives access to printers, not money; RCO05/CO05 new enterprises; "
        "RCO10/CO26 enterprises cooperating with research organisations: a job ran on a printer of a site "
        "whose organisation is a research organisation): for the period and since the project's start, "
        "each enterprise once; the enterprises behind each count are listed in the workbook.",
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
        "Användarnamn visas som stabila pseudonymer (en nyckelstyrd hash per plats och konto), aldrig som namn.",
        "Kund: organisationen som ett jobb gjordes för, enligt en kundmärkning [kund-id] i jobbets filnamn, "
        "en bokning av skrivaren eller användarkontots kund (i den ordningen om inget annat angetts). Ett jobb "
        "som inget av sätten pekar ut räknas som ej tillskrivet, det gissas aldrig.",
        "Utskriftstimmar per kund: skrivarens utskriftstid mellan start och slut för kundens jobb. "
        "Utskriftstid utanför jobb som registrerats under perioden räknas som ej tillskriven.",
        "Företag som använt: kunder av typen företag med minst ett jobb startat eller avslutat under perioden, "
        "vart och ett en gång efter organisationsnummer; storleksklasser enligt kommissionens rekommendation "
        "2003/361/EG: mikroföretag färre än 10 anställda, små färre än 50, medelstora färre än 250 (med "
        "gränserna för omsättning och balansomslutning). Inte kund föregående period: kund nu men inte under "
        "föregående lika långa period. Nytt företag (RCO05): registrerat mindre än tre år före sitt första "
        "jobb i projektet.",
        "Indikatorer (RCO01/CO01 företag som får stöd, per storleksklass; RCO04/CO04 med icke-finansiellt "
        "stöd, alla: nätverket ger tillgång till skrivare, inte pengar; RCO05/CO05 nya företag; RCO10/CO26 "
        "företag som samarbetar med forskningsorganisationer: ett jobb kördes på en skrivare vid en plats vars "
        "organisation är en forskningsorganisation): för perioden och sedan projektets start, varje företag "
        "en gång; företagen bakom varje antal listas i arbetsboken.",
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
        "unattributed": "{jobs} of {of} jobs have no customer: counted as unattributed.",
        "outside_jobs": "{hours:.2f} printing hours fall outside every job recorded in the period "
                        "(a job started before the period, or lost job events): counted as unattributed.",
        "disagreements": "{jobs} job(s) were named for different customers by different ways; the order "
                         "{order} decided.",
        "other_key": "The database holds pseudonyms made with another secret than this report's: user accounts "
                     "made under it cannot be matched to customers. Use the collector's [privacy] secret.",
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
        "unattributed": "{jobs} av {of} jobb saknar kund: de räknas som ej tillskrivna.",
        "outside_jobs": "{hours:.2f} utskriftstimmar ligger utanför alla jobb som registrerats under perioden "
                        "(ett jobb som startade före perioden, eller förlorade jobbhändelser): de räknas som ej "
                        "tillskrivna.",
        "disagreements": "{jobs} jobb pekades ut för olika kunder av olika sätt; ordningen {order} avgjorde.",
        "other_key": "Databasen innehåller pseudonymer gjorda med en annan hemlighet än rapportens: användarkonton "
                     "därifrån kan inte kopplas till kunder. Använd insamlarens hemlighet i [privacy].",
    },
}

# Notes that repeat once per printer, collapsed into one line with a count (PDF and one-page summary).
NOTES_MANY = {
    "en": {
        "unknown_site": "{n} sites are not in the inventory (organisation and county 'unknown'): {names}.",
        "not_in_inventory": "{n} printers are not in the inventory; their data is counted under the site they "
                            "reported: {names}.",
        "never_reported": "{n} printers have never sent data up to the end of the period: {names}.",
        "first_data": "{n} printers sent their first data during the period; {hours:.2f} hours before it are not "
                      "counted (not yet in network): {names}.",
        "silent": "{n} printers sent no data in this period (all their hours unknown): {names}.",
        "gaps": "{n} printers have hours without data, {hours:.2f} hours in all, counted as unknown: {names}.",
    },
    "sv": {
        "unknown_site": "{n} platser finns inte i inventariet (organisation och län 'unknown'): {names}.",
        "not_in_inventory": "{n} skrivare finns inte i inventariet; deras data räknas under platsen de "
                            "rapporterade: {names}.",
        "never_reported": "{n} skrivare har aldrig skickat data fram till periodens slut: {names}.",
        "first_data": "{n} skrivare skickade sin första data under perioden; {hours:.2f} timmar före räknas inte "
                      "(ännu inte i nätverket): {names}.",
        "silent": "{n} skrivare skickade ingen data under perioden (alla timmar okända): {names}.",
        "gaps": "{n} skrivare har timmar utan data, sammanlagt {hours:.2f} timmar, räknade som okända: {names}.",
    },
}


def check(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r}: use one of {', '.join(LANGS)}")
    return lang


def note_text(note, lang: str) -> str:
    args = {k: indicator_labels.count(v.n, v.word, lang) if isinstance(v, indicator_labels.Counted) else v
            for k, v in note.args.items()}
    return NOTES[lang][note.code].format(**args)


def collapsed_notes(notes: list, lang: str, names_shown: int = 8) -> list[str]:
    """One line per note, except notes of one kind that repeat: one line with their count."""
    by_code: dict[str, list] = {}
    for note in notes:
        by_code.setdefault(note.code, []).append(note)
    out = []
    for code, group in by_code.items():
        if len(group) == 1 or code not in NOTES_MANY[lang]:
            out += [note_text(n, lang) for n in group]
            continue
        names = [str(n.args.get("printer") or n.args.get("site")) for n in group]
        shown = ", ".join(names[:names_shown])
        if len(names) > names_shown:
            shown += " " + TEXT[lang]["more"].format(n=len(names) - names_shown)
        hours = sum(n.args.get("hours", 0) for n in group)
        out.append(NOTES_MANY[lang][code].format(n=len(group), names=shown, hours=hours))
    return out


for _lang in LANGS:  # the indicator report's words (indicator_labels.py)
    COLUMNS[_lang].update(indicator_labels.COLUMNS[_lang])
    SHEETS[_lang].update(indicator_labels.SHEETS[_lang])
    NOTES[_lang].update({f"indicators_{k}": v for k, v in indicator_labels.NOTES[_lang].items()})
    # The maintenance section's sheet; its column headers stay in maintenance.py (Grafana's
    # rollup panels take every label of COLUMNS).
    SHEETS[_lang].update(maintenance_labels.SHEETS[_lang])

for _lang in LANGS:  # the material, cost and outcome sheets' words (cost_labels.py)
    COLUMNS[_lang].update(cost_labels.COLUMNS[_lang])
    SHEETS[_lang].update(cost_labels.SHEETS[_lang])
    NOTES[_lang].update({f"cost_{k}": v for k, v in cost_labels.NOTES[_lang].items()})
