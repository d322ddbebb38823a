"""One pseudonym secret for the collectors and agents the devkit starts: agents pseudonymise user
names at the source with the collector's secret (agent/sharing.py). Not a secret of any real
installation."""

from __future__ import annotations

from pathlib import Path

DEV_SECRET = "devkit-pseudonym-secret-0123456789abcdef"


def secret_file(folder: Path) -> Path:
    """The secret as a file in ``folder`` (made on first use), for ``[privacy] secret_file``."""
    path = Path(folder) / "pseudonym-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEV_SECRET + "\n")
    return path
