"""Customer organisations in the inventory: who the printers served.

```toml
[customers.kilsberg-verktyg]
name = "Kilsbergens Verktyg AB"   # fictional
kind = "company"                  # company | academia | public | association | private
size = "small_medium"             # companies only: small_medium (< 250 staff, EU SME) | large
org_number = "556677-8899"        # optional: Swedish organisation number, checksum checked
county = "Örebro"                 # the customer's county (län), without "län"
```

A private person's entry holds a label, the kind and the county — no name and no number: a
private person has no organisation number, and a sole trader's is their personal identity number
(personal data), so both are refused. Reports show private persons only as a count.
"""

from __future__ import annotations

import re

import msgspec

from common.configkit import Invalid

KINDS = ("company", "academia", "public", "association", "private")
SIZES = ("small_medium", "large")
COUNTIES = (
    "Blekinge", "Dalarna", "Gotland", "Gävleborg", "Halland", "Jämtland", "Jönköping", "Kalmar", "Kronoberg",
    "Norrbotten", "Skåne", "Stockholm", "Södermanland", "Uppsala", "Värmland", "Västerbotten",
    "Västernorrland", "Västmanland", "Västra Götaland", "Örebro", "Östergötland",
)
_ORG_NUMBER = re.compile(r"^(\d{6})-?(\d{4})$")


class Customer(msgspec.Struct, forbid_unknown_fields=True):
    kind: str
    county: str
    name: str = ""
    size: str | None = None
    org_number: str | None = None

    def __post_init__(self):
        from server.inventory import check_names  # the inventory imports this module first

        check_names(self, "name")
        if self.kind not in KINDS:
            raise Invalid("kind", f"{self.kind!r} is not a customer kind", f"use one of {', '.join(KINDS)}")
        _check_size(self.kind, self.size)
        _check_county(self.county)
        if self.kind == "private":
            _check_private(self)
        elif not self.name.strip():
            raise Invalid("name", "is missing or empty", "write the organisation's name")
        if self.org_number is not None:
            self.org_number = org_number(self.org_number)

    @property
    def enterprise(self) -> bool:
        return self.kind == "company"


def _check_size(kind: str, size: str | None) -> None:
    if kind == "company" and size not in SIZES:
        raise Invalid("size", f"{size!r} is not a size class" if size else "is missing for a company",
                      "set size = 'small_medium' (fewer than 250 staff) or 'large'")
    if kind != "company" and size is not None:
        raise Invalid("size", f"is set for a customer of kind {kind!r}", "remove it: only companies have a size class")


def _check_county(county: str) -> None:
    if county not in COUNTIES:
        near = [c for c in COUNTIES if c.lower() == county.lower().removesuffix(" län").removesuffix("s")]
        hint = f"write {near[0]!r}" if near else "use the county's name without 'län', e.g. 'Örebro' or 'Västmanland'"
        raise Invalid("county", f"{county!r} is not a Swedish county", hint)


def _check_private(c: Customer) -> None:
    if c.org_number is not None:
        raise Invalid("org_number", "is set for a private person",
                      "remove it: a private person has none, and a sole trader's is a personal identity number")
    if c.name.strip():
        raise Invalid("name", "is set for a private person (a name is personal data)",
                      "remove it; the customer's ID is its label (e.g. [customers.private-07])")


def org_number(text: str) -> str:
    """A Swedish organisation number as NNNNNN-NNNN, checked; Invalid says what is wrong."""
    found = _ORG_NUMBER.match(text.strip())
    if not found:
        raise Invalid("org_number", f"{text!r} is not an organisation number",
                      "write ten digits as NNNNNN-NNNN, e.g. '556677-8899'")
    digits = found.group(1) + found.group(2)
    if 1 <= int(digits[2:4]) <= 12:
        raise Invalid("org_number", f"{text!r} looks like a personal identity number (a sole trader's)",
                      "leave org_number out: a personal identity number is personal data")
    if not luhn_ok(digits):
        raise Invalid("org_number", f"{text!r} fails its check digit",
                      "check the number: its last digit is a Luhn check digit over the other nine")
    return f"{digits[:6]}-{digits[6:]}"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0
