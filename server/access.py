"""Who may see what on the HTTP API and the status page (docs/privacy.md, "Who sees what").

- An organisation's token: its own printers in full (file, user, texts), every other printer
  as state only.
- The network's token: every printer as state only.
- No token: nothing (401), unless ``[http] public = "status"`` (a kiosk screen): state only.

State only is a printer without its file and user, and with the file name cut out of its state
text and error (a printer may quote it there): state, progress, temperatures, times, model, API.
An open alert is shown in full to the organisation of its printer; to anyone else as its rule,
subject, severity and time. A printer's organisation is its site's in the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from server.inventory import Inventory
from server.tenancy import org_id
from server.tokens import TokenFile

COOKIE = "printfarm_token"
PUBLIC = "*public"  # a scope no token has: the kiosk's
PUBLIC_MODES = ("off", "status")
HIDDEN = ("file", "user")
ALERT_OUTLINE = ("id", "rule", "subject", "severity", "opened")


@dataclass(frozen=True)
class Viewer:
    scope: str  # an organisation ID, tokens.NETWORK or PUBLIC

    def sees_in_full(self, org: str | None) -> bool:
        return org is not None and org == self.scope


def organisation_ids(inventory: Inventory) -> dict[str, str]:
    """site -> organisation ID: as the inventory resolves it where it does (``org_of_site``, from
    its ``[organisations.<id>]`` tables), else made from the display name (server/tenancy.py)."""
    resolved = getattr(inventory, "org_of_site", None)
    if resolved is not None:
        return dict(resolved)
    return {site: org_id(s.organisation) for site, s in inventory.sites.items()}


class Access:
    def __init__(self, tokens: TokenFile, site_orgs: dict[str, str], public: str = "off"):
        self.tokens, self.site_orgs, self.public = tokens, site_orgs, public

    def viewer(self, authorization: str | None, cookie: str | None) -> Viewer | None:
        """The viewer a request's ``Authorization: Bearer`` header or cookie makes; None: 401."""
        scope = self.tokens.scope(bearer(authorization) or cookie_token(cookie))
        if scope is not None:
            return Viewer(scope)
        return Viewer(PUBLIC) if self.public == "status" else None

    def fleet(self, snapshot: dict, viewer: Viewer) -> dict:
        printers = [p if viewer.sees_in_full(self.site_orgs.get(p["site"])) else state_only(p)
                    for p in snapshot["printers"]]
        return {**snapshot, "printers": printers}

    def alerts(self, incidents: list[dict], viewer: Viewer) -> list[dict]:
        return [i if viewer.sees_in_full(self._org_of_subject(i.get("subject", ""))) else
                {k: i.get(k) for k in ALERT_OUTLINE} for i in incidents]

    def _org_of_subject(self, subject: str) -> str | None:
        site, sep, _ = subject.partition("/")  # "site/printer"; an agent's is "agent:<id>"
        return self.site_orgs.get(site) if sep and not subject.startswith("agent:") else None


def state_only(p: dict) -> dict:
    out = {k: v for k, v in p.items() if k not in HIDDEN}
    file = p.get("file")
    if file:
        for key in ("state_text", "error"):
            if out.get(key):
                out[key] = _without(out[key], file)
    return out


def _without(text: str, file: str) -> str:
    for name in (file, file.rsplit("/", 1)[-1]):
        if name:
            text = text.replace(name, "(file)")
    return text


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def cookie_token(header: str | None) -> str | None:
    if not header:
        return None
    try:
        morsel = SimpleCookie(header).get(COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel else None
