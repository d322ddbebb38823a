"""What a site's messages may carry, decided on the agent before anything leaves the site.

```toml
[privacy]
sharing = "full"        # full | masked | status (below)
secret_file = "/etc/printfarm-agent/pseudonym-secret"   # or secret_env: the collector's secret
[privacy.sites]         # optional: a site of this agent's printers that shares otherwise
workshop = "status"
```

- ``full``: file names as they are; users as pseudonyms.
- ``masked``: each file name becomes a stable keyed label (``f-3f9a2c1b7e0d [kilsberg-verktyg].3mf``,
  common/pseudonyms.py), so a customer tag still attributes the job; users as pseudonyms.
- ``status``: no file name and no user at all: state, progress, temperatures, job outcomes,
  durations, layers and filament.

Whatever the policy, no raw user name leaves: the agent sends the pseudonym the collector would
make (the same HMAC-SHA-256 and secret, common/pseudonyms.py), or, without a secret, no user.
A file name that a printer repeats in its state text or error is replaced there too.
"""

from __future__ import annotations

import logging

import msgspec

from common.configkit import Invalid, Section, read_secret
from common.pseudonyms import Pseudonyms

log = logging.getLogger(__name__)

POLICIES = ("full", "masked", "status")
_POLICY_FIX = "use 'full' (file names and pseudonymous users), 'masked' (file labels) or 'status' (neither)"


class PrivacyConfig(Section):
    sharing: str = "full"
    secret_file: str | None = None
    secret_env: str | None = None
    sites: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self):
        if self.sharing not in POLICIES:
            raise Invalid("sharing", f"{self.sharing!r} is not a sharing policy", _POLICY_FIX)
        for site, policy in self.sites.items():
            if policy not in POLICIES:
                raise Invalid(f"sites.{site}", f"{policy!r} is not a sharing policy", _POLICY_FIX)
        self.pseudonyms = self._pseudonyms()
        if self.pseudonyms is None and "masked" in (self.sharing, *self.sites.values()):
            raise Invalid("secret_file", "sharing 'masked' needs the pseudonym secret to make file labels",
                          "set secret_file (or secret_env) to a copy of the collector's [privacy] secret")

    def _pseudonyms(self) -> Pseudonyms | None:
        if not (self.secret_file or self.secret_env):
            return None
        secret = read_secret("secret", self.secret_file, self.secret_env)  # fails now, naming the key
        try:
            return Pseudonyms(secret)
        except ValueError:
            key = "secret_file" if self.secret_file else "secret_env"
            raise Invalid(key, "the secret is shorter than 16 bytes",
                          "use the collector's secret (its <state_dir>/pseudonym-secret or [privacy] secret_file)") from None

    def policy(self, site: str) -> str:
        return self.sites.get(site, self.sharing)

    def for_site(self, site: str) -> "Sharing":
        return Sharing(self.policy(site), site, self.pseudonyms)


class Sharing:
    """One printer's policy (its site's), applied to the file, user and free texts of each message.

    It remembers the last few file names it saw, because a printer may quote one in an error
    after the job that had it is gone (a "disconnected" event carries no file of its own)."""

    RECENT = 8

    def __init__(self, policy: str = "full", site: str = "", pseudonyms: Pseudonyms | None = None):
        self.policy, self.site, self.pseudonyms = policy, site, pseudonyms
        self._recent: dict[str, None] = {}  # file names seen, oldest first

    def file(self, name: str | None) -> str | None:
        if not name or self.policy == "full":
            return name
        self._remember(name)
        return self.pseudonyms.file_label(self.site, name) if self.policy == "masked" else None

    def _remember(self, name: str) -> None:
        if name not in self._recent:
            self._recent[name] = None
            if len(self._recent) > self.RECENT:
                del self._recent[next(iter(self._recent))]

    def user(self, name: str | None) -> str | None:
        """The pseudonym, never the name; none without a secret or with policy ``status``."""
        if not name or self.pseudonyms is None or self.policy == "status":
            return None
        return self.pseudonyms.stored(self.site, name)

    def text(self, text: str | None, file: str | None = None) -> str | None:
        """A state text or error without a file name in it (a printer may quote one there)."""
        if not text or self.policy == "full":
            return text
        if file:
            self._remember(file)
        for seen in list(reversed(self._recent)):  # the newest first
            for name in (seen, seen.rsplit("/", 1)[-1]):  # the path, or only its last part
                if name and name in text:
                    text = text.replace(name, self.file(seen) or "(file)")
        return text
