"""The product touches no private attribute but its own: a library's private names tie us to one
version of it without saying so (issue #16). Only ``self._x`` and ``cls._x`` are allowed."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def private_accesses(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "setattr", "hasattr"):
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and str(name.value).startswith("_"):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_product_code_uses_no_private_attribute_of_another_object():
    found = [hit for package in ("agent", "server", "common") for path in sorted((ROOT / package).rglob("*.py"))
             for hit in private_accesses(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "\n".join(found)


def test_the_check_finds_what_it_looks_for():  # a positive control: the check above can fail
    sample = "self._ok = 1\nclient._sock.recv(1)\nhasattr(mqtt.Client, '_sock_recv')\nx.__class__\n"
    assert sorted(private_accesses(sample, "s")) == ["s:2: client._sock", "s:3: hasattr(mqtt.Client, '_sock_recv')"]
