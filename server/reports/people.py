"""How a report treats printer-API user names ([privacy] users, ``report --users``).

- ``pseudonym`` (default): the stable pseudonym the collector stored (common/pseudonyms.py); a raw
  name found in old points is turned into its pseudonym here, so no report shows one.
- ``hidden``: no user column values at all; the distinct-user counts stay.
- ``name``: real names, an explicit choice: read from ``job_user``, which holds them only for
  ``[privacy] raw_user_days``; older jobs show the pseudonym (the report's notes say so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from common.pseudonyms import Pseudonyms

MODES = ("pseudonym", "hidden", "name")


@dataclass
class People:
    pseudonyms: Pseudonyms | None = None  # None: names pass as stored (unit tests without a secret)
    show: str = "pseudonym"
    names: dict[tuple, str] = field(default_factory=dict)  # (site, printer, kind, ts) -> raw name
    stored_keys: set[str] = field(default_factory=set)  # key IDs the collector recorded

    def __post_init__(self):
        self._normalise = lru_cache(maxsize=65_536)(self.pseudonyms.normalise) if self.pseudonyms else None

    def user(self, site: str, stored: str | None) -> str | None:
        """What counts as the user: always the pseudonym."""
        if not stored or self._normalise is None:
            return stored or None
        return self._normalise(site, stored)

    def shown(self, site: str, printer: str, kind: str, ts: int, user: str | None) -> str:
        """What the job list shows for one event's user."""
        if self.show == "hidden" or not user:
            return ""
        if self.show == "name":
            return self.names.get((site, printer, kind, ts)) or user
        return user

    def other_keys(self) -> bool:
        """The database holds pseudonyms made with a secret other than this report's."""
        return self.pseudonyms is not None and bool(self.stored_keys - {self.pseudonyms.key_id()})
