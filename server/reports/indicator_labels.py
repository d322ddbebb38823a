"""The words of the indicator report, in English and Swedish (merged into labels.py's tables), and
counts with their nouns in the right number ("1 stort företag", "2 stora")."""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = {
    "en": {
        "code": "Code 2021–27", "code_2014": "Code 2014–20", "indicator": "Indicator",
        "period_count": "In the period", "first_in_period": "of them counted for the first time",
        "cumulative": "Since the project's start", "target": "Target", "share_reached": "Share of target reached",
        "enterprise": "Enterprise", "size_class": "Size class (2003/361/EC)", "registered": "Registered",
        "first_served": "First served in the project", "served_in_period": "Served in the period (RCO01, RCO04)",
        "served_since_start": "Served since the project's start (RCO01, RCO04)",
        "research_in_period": "With a research organisation in the period (RCO10)",
        "research_since_start": "With a research organisation since the project's start (RCO10)",
        "not_in_previous": "Not served in the previous period",
        "new_enterprise": "New enterprise (RCO05: registered less than 3 years before first served)",
        "enterprises_micro": "of which micro", "enterprises_small": "of which small",
        "enterprises_medium": "of which medium-sized",
        "enterprises_new": "New enterprises (RCO05: registered less than 3 years before first served)",
        "enterprises_not_in_previous": "Enterprises not served in the previous period",
        "customers_not_in_previous": "Customers not served in the previous period",
    },
    "sv": {
        "code": "Kod 2021–27", "code_2014": "Kod 2014–20", "indicator": "Indikator",
        "period_count": "Under perioden", "first_in_period": "varav räknade för första gången",
        "cumulative": "Sedan projektets start", "target": "Målvärde", "share_reached": "Andel av målvärdet",
        "enterprise": "Företag", "size_class": "Storleksklass (2003/361/EG)", "registered": "Registrerat",
        "first_served": "Första stöd i projektet", "served_in_period": "Stöd under perioden (RCO01, RCO04)",
        "served_since_start": "Stöd sedan projektets start (RCO01, RCO04)",
        "research_in_period": "Med en forskningsorganisation under perioden (RCO10)",
        "research_since_start": "Med en forskningsorganisation sedan projektets start (RCO10)",
        "not_in_previous": "Inte kund föregående period",
        "new_enterprise": "Nytt företag (RCO05: registrerat mindre än 3 år före första stödet)",
        "enterprises_micro": "varav mikroföretag", "enterprises_small": "varav små",
        "enterprises_medium": "varav medelstora",
        "enterprises_new": "Nya företag (RCO05: registrerade mindre än 3 år före första stödet)",
        "enterprises_not_in_previous": "Företag som inte använde skrivarna föregående period",
        "customers_not_in_previous": "Kunder som inte använde skrivarna föregående period",
    },
}

SHEETS = {
    "en": {"indicators": "Indicators", "indicator_enterprises": "Indicator enterprises"},
    "sv": {"indicators": "Indikatorer", "indicator_enterprises": "Indikatorföretag"},
}

NAMES = {  # indicator key -> its name
    "en": {"RCO01": "Enterprises supported", "RCO01_micro": "of which micro", "RCO01_small": "of which small",
           "RCO01_medium": "of which medium-sized", "RCO01_large": "of which large",
           "RCO01_small_medium": "of which SMEs of unknown class (small_medium)",
           "RCO04": "Enterprises with non-financial support", "RCO05": "New enterprises supported",
           "RCO10": "Enterprises cooperating with research organisations"},
    "sv": {"RCO01": "Företag som får stöd", "RCO01_micro": "varav mikroföretag", "RCO01_small": "varav små företag",
           "RCO01_medium": "varav medelstora företag", "RCO01_large": "varav stora företag",
           "RCO01_small_medium": "varav små eller medelstora, okänd klass (small_medium)",
           "RCO04": "Företag som får icke-finansiellt stöd", "RCO05": "Nya företag som får stöd",
           "RCO10": "Företag som samarbetar med forskningsorganisationer"},
}

SIZES = {
    "en": {"micro": "micro", "small": "small", "medium": "medium-sized", "large": "large",
           "small_medium": "SME, class not given"},
    "sv": {"micro": "mikroföretag", "small": "litet", "medium": "medelstort", "large": "stort",
           "small_medium": "litet eller medelstort, klass ej angiven"},
}

# A noun or adjective after a count: (one, many). Swedish adjectives agree with "företag" (neuter).
FORMS = {
    "en": {"enterprise": ("enterprise", "enterprises"), "micro": ("micro", "micro"), "small": ("small", "small"),
           "medium": ("medium-sized", "medium-sized"), "large": ("large", "large"),
           "small_medium": ("SME of unknown class", "SMEs of unknown class")},
    "sv": {"enterprise": ("företag", "företag"), "micro": ("mikroföretag", "mikroföretag"), "small": ("litet", "små"),
           "medium": ("medelstort", "medelstora"), "large": ("stort", "stora"),
           "small_medium": ("litet eller medelstort av okänd klass", "små eller medelstora av okänd klass")},
}
AND = {"en": "and", "sv": "och"}

TEXT = {
    "en": {
        "indicators": "The funder's indicators", "indicators_since": "since the project's start {start}",
        "no_project": "no [project] in the inventory: the period only, no targets",
        "enterprises_line": "{served} used the printers: {sizes}. {not_previous} of them did not use them in the "
                            "previous period ({previous}). New enterprises (RCO05: registered less than three years "
                            "before first served): {new}.",
        "enterprises_line_first": "{served} used the printers: {sizes}. New enterprises (RCO05: registered less "
                                  "than three years before first served): {new}.",
    },
    "sv": {
        "indicators": "Fondens indikatorer", "indicators_since": "sedan projektets start {start}",
        "no_project": "inget [project] i inventariet: bara perioden, inga målvärden",
        "enterprises_line": "{served} använde skrivarna: {sizes}. {not_previous} av dem använde dem inte under "
                            "föregående period ({previous}). Nya företag (RCO05: registrerade mindre än tre år före "
                            "första stödet): {new}.",
        "enterprises_line_first": "{served} använde skrivarna: {sizes}. Nya företag (RCO05: registrerade mindre än "
                                  "tre år före första stödet): {new}.",
    },
}

DEFINITIONS = {  # under the indicator table of the full PDF
    "en": [
        "Each enterprise (customer of kind company) counts once, identified by its organisation number (by its "
        "customer ID where it has none); it is served in a period when a job of its started or ended in it. "
        "'Since the project's start': from [project] start to the period's end (at most [project] end).",
        "RCO01 (2014-20: CO01) enterprises supported, by the size classes of Commission Recommendation "
        "2003/361/EC: micro fewer than 10 staff, small fewer than 50, medium-sized fewer than 250, with its "
        "turnover and balance-sheet limits; the size is the customer's size in the inventory.",
        "RCO04 (CO04) enterprises with non-financial support: every enterprise served, as the network gives "
        "access to printers and staff's help, never money.",
        "RCO05 (CO05) new enterprises: registered less than three years before their first job in the project "
        "(registered on the day three years before, or earlier, is not new; a registration year alone counts "
        "only when the whole year is on one side of that day).",
        "RCO10 (CO26) enterprises cooperating with research organisations: a job of theirs ran on a printer of a "
        "site whose organisation is a research organisation (organisation_kind = 'research' in the inventory).",
        "'Of them counted for the first time': counted since the project's start, but not before the period. "
        "Share of target reached = since the project's start ÷ [project.targets]. The enterprises behind each "
        "count are listed by organisation number in the workbook (sheet 'Indicator enterprises').",
    ],
    "sv": [
        "Varje företag (kund av typen företag) räknas en gång, efter sitt organisationsnummer (efter kund-id om "
        "det saknas); det har fått stöd under en period om ett jobb för det startade eller slutade under den. "
        "'Sedan projektets start': från [project] start till periodens slut (högst [project] end).",
        "RCO01 (2014–20: CO01) företag som får stöd, efter storleksklasserna i kommissionens rekommendation "
        "2003/361/EG: mikroföretag färre än 10 anställda, små färre än 50, medelstora färre än 250, med dess "
        "gränser för omsättning och balansomslutning; storleken är kundens storlek i inventariet.",
        "RCO04 (CO04) företag som får icke-finansiellt stöd: alla företag som fått stöd, eftersom nätverket ger "
        "tillgång till skrivare och personalens hjälp, aldrig pengar.",
        "RCO05 (CO05) nya företag: registrerade mindre än tre år före sitt första jobb i projektet (registrerat "
        "på dagen tre år före, eller tidigare, är inte nytt; enbart ett registreringsår räknas bara när hela året "
        "ligger på ena sidan om den dagen).",
        "RCO10 (CO26) företag som samarbetar med forskningsorganisationer: ett jobb för företaget kördes på en "
        "skrivare vid en plats vars organisation är en forskningsorganisation (organisation_kind = 'research' i "
        "inventariet).",
        "'Varav räknade för första gången': räknade sedan projektets start, men inte före perioden. Andel av "
        "målvärdet = sedan projektets start ÷ [project.targets]. Företagen bakom varje antal listas efter "
        "organisationsnummer i arbetsboken (bladet 'Indikatorföretag').",
    ],
}

NOTES = {
    "en": {
        "no_project": "The inventory has no [project]: the indicators are counted for the period only, without "
                      "targets. Add [project] start and end, and [project.targets] (docs/reports.md).",
        "no_org_number": "No organisation number for {enterprises}, counted by customer ID: {names}. "
                         "Add org_number so the funder can check them.",
        "no_registration": "No registration date for {enterprises}, so not counted in RCO05 (new enterprises): "
                           "{names}. Add registered.",
        "year_only": "Only a registration year, which does not tell whether the enterprise existed three years "
                     "before it was first served, for {enterprises}, so not counted in RCO05 (new enterprises): "
                     "{names}. Give the date.",
        "unsized": "The old size class small_medium for {enterprises}, counted in RCO01 as SMEs of unknown "
                   "class: {names}. Set size to micro, small or medium.",
    },
    "sv": {
        "no_project": "Inventariet saknar [project]: indikatorerna räknas bara för perioden, utan målvärden. "
                      "Lägg till [project] start och end samt [project.targets] (docs/reports.md).",
        "no_org_number": "Organisationsnummer saknas för {enterprises}, som räknas efter kund-id: {names}. "
                         "Lägg till org_number så att finansiären kan kontrollera.",
        "no_registration": "Registreringsdatum saknas för {enterprises}, som därför inte räknas med i RCO05 "
                           "(nya företag): {names}. Lägg till registered.",
        "year_only": "Bara registreringsår, som inte visar om företaget fanns tre år före första stödet, för "
                     "{enterprises}, som därför inte räknas med i RCO05 (nya företag): {names}. Ange datumet.",
        "unsized": "Den gamla storleksklassen small_medium för {enterprises}, som räknas i RCO01 som små eller "
                   "medelstora av okänd klass: {names}. Sätt size till micro, small eller medium.",
    },
}


@dataclass(frozen=True)
class Counted:
    """A count in a note's arguments, written with its noun in the note's language."""

    n: int
    word: str


def count(n: int, word: str, lang: str) -> str:
    """'1 stort', '2 stora', '1 enterprise', '3 enterprises'."""
    one, many = FORMS[lang][word]
    number = f"{n:,}".replace(",", "\u00a0") if lang == "sv" else f"{n:,}"
    return f"{number} {one if n == 1 else many}"


def listing(parts: list[str], lang: str) -> str:
    """'a, b and c' / 'a, b och c'."""
    if len(parts) < 2:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {AND[lang]} {parts[-1]}"
