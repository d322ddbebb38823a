"""The docs never show a secret typed on a command line (it stays in the shell's history)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# echo/printf of a literal into tee or a file, or mosquitto_passwd -b with the password as an argument
SECRET_ON_A_COMMAND_LINE = re.compile(
    r"(?:echo|printf)\s+['\"][^'\"]*['\"]\s*\|\s*(?:sudo\s+)?tee\b|mosquitto_passwd\b[^\n]*\s-b\b")


def test_no_doc_or_script_puts_a_secret_on_a_command_line():
    texts = [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"), *(ROOT / "deploy").rglob("*.sh"),
             *(ROOT / "examples").glob("*")]
    found = [f"{path.relative_to(ROOT)}: {m.group(0)}" for path in texts
             for m in SECRET_ON_A_COMMAND_LINE.finditer(path.read_text())]
    assert found == []
