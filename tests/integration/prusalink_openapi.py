"""Prusa's published PrusaLink OpenAPI specs (tests/fixtures/prusalink/), and the few
corrections without which no answer of any PrusaLink could pass them.

The files are used unchanged; the corrections are made in memory, each for a stated reason,
and test_prusalink_spec.py shows each one is still needed (drop it when Prusa fixes the spec):

- ``oneOf`` → ``anyOf`` where every alternative is an object schema with only optional
  properties (``Job``: JobSerialPrint | JobFilePrint; legacy ``Job``, ``Progress``, the file and
  ``telemetry``): any object is valid under all of them at once, so ``oneOf`` ("exactly one")
  rejects every answer. The authors meant "one of these shapes". The same where the alternatives
  are ``allOf``s of one common schema plus such optional objects (a file's ``FileInfo`` |
  ``PrintFileInfo`` | ``FirmwareFileInfo`` | ``FolderInfo``, all a ``GenericFileInfo``): every
  file's answer is valid under all four.
- 401 on ``/api/v1/status`` and, in the legacy spec, on ``/api/version``, ``/api/printer``,
  ``/api/job`` and ``/api/files/{target}``: the firmware asks every request under ``/api/`` for
  digest auth and answers 401 with a challenge (every other v1 path declares it); the legacy
  spec only knows the 403 of the API-key era.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from openapi_core import Config, OpenAPI

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prusalink"
UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}
MISSING_401 = {
    "openapi.yaml": [("/api/v1/status", "get")],
    "openapi-legacy.yaml": [("/api/version", "get"), ("/api/printer", "get"), ("/api/job", "get"),
                            ("/api/job", "post"), ("/api/files/{target}", "post")],
}


def load(name: str) -> dict:
    return _string_keys(yaml.safe_load((FIXTURES / name).read_text()))


def _string_keys(node):
    """YAML reads the status codes (``200:``) as integers; OpenAPI's keys are strings."""
    if isinstance(node, dict):
        return {str(k): _string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_string_keys(v) for v in node]
    return node


def corrected(name: str) -> tuple[dict, list[str]]:
    """The spec with the corrections made, and where they were made."""
    doc = copy.deepcopy(load(name))
    changes = [f"oneOf->anyOf at {where}" for where in _loosen_oneofs(doc, doc, "#")]
    for path, method in MISSING_401[name]:
        responses = doc["paths"][path][method]["responses"]
        if "401" not in responses:
            responses["401"] = UNAUTHORIZED
            changes.append(f"401 added to {method.upper()} {path}")
    return doc, changes


def openapi(doc: dict) -> OpenAPI:
    # The legacy document fails openapi-spec-validator on a `default` of an SL1-only schema
    # (system commands) that no endpoint we use touches; validating answers still works.
    return OpenAPI.from_dict(doc, config=Config(spec_validator_cls=None))


def _loosen_oneofs(node, root: dict, where: str) -> list[str]:
    found = []
    if isinstance(node, dict):
        alternatives = node.get("oneOf")
        if alternatives and (all(_never_exclusive(_resolve(a, root)) for a in alternatives)
                             or _common_base_only(alternatives, root)):
            node["anyOf"] = node.pop("oneOf")
            found.append(where)
        for key, value in node.items():
            found += _loosen_oneofs(value, root, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _loosen_oneofs(value, root, f"{where}/{index}")
    return found


def _never_exclusive(schema: dict) -> bool:
    """An object schema that every object without conflicting fields satisfies."""
    return (schema.get("type", "object") == "object" and not schema.get("required")
            and schema.get("additionalProperties", True) is not False and "properties" in schema)


def _common_base_only(alternatives: list, root: dict) -> bool:
    """``allOf`` alternatives whose parts are a schema they all share plus never-exclusive objects."""
    leaves = [_leaves(_resolve(a, root), root) for a in alternatives]
    if not all(leaves) or not all("allOf" in _resolve(a, root) for a in alternatives):
        return False
    common = [leaf for leaf in leaves[0] if all(leaf in other for other in leaves[1:])]
    return bool(common) and all(_never_exclusive(leaf) for parts in leaves for leaf in parts if leaf not in common)


def _leaves(schema: dict, root: dict) -> list[dict]:
    """The schemas an ``allOf`` (nested ones flattened) is made of."""
    parts = schema.get("allOf")
    if not parts:
        return [schema]
    return [leaf for part in parts for leaf in _leaves(_resolve(part, root), root)]


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if not ref:
        return schema
    node = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node
