"""The ``[privacy]`` table and what the collector does with a message's user name, in one place.

```toml
[privacy]
users = "pseudonym"          # what views and reports show: pseudonym | hidden (counts only) | name
secret_file = "/etc/printfarm/pseudonym-secret"   # or secret_env; default <state_dir>/pseudonym-secret
raw_user_days = 0            # keep raw user names this many days (measurement job_user); 0 = never store them
```

Where a user name goes (docs/privacy.md): the agent sends it to the collector over MQTT; the
collector replaces it with its pseudonym (common/pseudonyms.py) before it writes, shows or hands
the message to the alert engine. InfluxDB's ``telemetry`` and ``job`` points hold the pseudonym.
Only with ``raw_user_days > 0`` is the raw name written as well, into its own measurement
``job_user`` (one point per job event), which the collector purges once it is older than that.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from common.configkit import ConfigError, Invalid, Section, check_range, read_secret
from common.pseudonyms import Pseudonyms

log = logging.getLogger(__name__)

USER_MODES = ("pseudonym", "hidden", "name")
DEFAULT_SECRET_NAME = "pseudonym-secret"


class PrivacyConfig(Section):
    users: str = "pseudonym"
    secret_file: str | None = None
    secret_env: str | None = None
    raw_user_days: float = 0.0

    def __post_init__(self):
        if self.users not in USER_MODES:
            raise Invalid("users", f"{self.users!r} is not a way to show users",
                          "use 'pseudonym' (default), 'hidden' (counts only) or 'name' (real names)")
        check_range("raw_user_days", self.raw_user_days, 0, 3650)
        if self.secret_file or self.secret_env:
            read_secret("secret", self.secret_file, self.secret_env)  # fails now, naming the key

    def pseudonyms(self, state_dir: str) -> Pseudonyms:
        """The keyed hash. Without secret_file/secret_env the secret lives in the state folder and
        is made on first use, so the collector and ``report`` (same config) share it."""
        if self.secret_file or self.secret_env:
            return Pseudonyms(read_secret("secret", self.secret_file, self.secret_env))
        return Pseudonyms(_own_secret(Path(state_dir) / DEFAULT_SECRET_NAME))


def _own_secret(path: Path) -> str:
    try:
        return path.read_text().strip() or _create(path)
    except FileNotFoundError:
        return _create(path)
    except OSError as exc:
        raise ConfigError("privacy.secret_file", f"cannot read {path} ({exc.strerror})",
                          "make the state folder readable by this user, or set secret_file") from None


def _create(path: Path) -> str:
    value = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError("privacy.secret_file", f"cannot create {path} ({exc.strerror})",
                          "make state_dir writable, or set secret_file to an existing secret") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    log.info("made a new pseudonym secret in %s (keep it: other secrets give other pseudonyms)", path)
    return value


class UserNames:
    """What the collector does with the user name of a printer message (server/ingest.py)."""

    def __init__(self, pseudonyms: Pseudonyms, shown: str = "pseudonym", keep_raw: bool = False):
        self.pseudonyms, self.shown, self.keep_raw = pseudonyms, shown, keep_raw

    def show(self, msg, raw: str) -> None:
        """After storing: what the live views and alert rules get."""
        if self.shown == "name":
            msg.user = raw
        elif self.shown == "hidden":
            msg.user = None

    @classmethod
    def from_config(cls, privacy: PrivacyConfig, state_dir: str) -> "UserNames":
        return cls(privacy.pseudonyms(state_dir), privacy.users, privacy.raw_user_days > 0)
