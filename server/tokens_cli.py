"""``printfarm-server token-create|token-list|token-revoke`` (docs/privacy.md, "Who sees what").

- ``token-create --organisation ID [--label TEXT]`` or ``token-create --network``: a new token,
  printed once (only its SHA-256 is kept, in the tokens file: server/tokens.py).
- ``token-list``: each token's id, scope, creation time and label (never a token).
- ``token-revoke --id ID`` or ``--organisation ID``: removed from the file; the running collector
  refuses it at its next request.
"""

from __future__ import annotations

import argparse
import sys

from server import tokens
from server.access import organisation_ids


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("token-create, token-list and token-revoke")
    try:
        group.add_argument("--organisation", metavar="ID", help="token-create/-revoke: the organisation's ID")
    except argparse.ArgumentError:  # report --organisation defines it already: one option serves both
        pass
    group.add_argument("--network", action="store_true", help="token-create: a network token (state only)")
    group.add_argument("--label", default="", help="token-create: what the token is for, e.g. 'lab screen'")
    group.add_argument("--id", dest="token_id", metavar="ID", help="token-revoke: the id token-list shows")


def create(cfg, inv, args) -> int:
    known = sorted(set(organisation_ids(inv).values()))
    if args.network == bool(args.organisation):
        print("token-create: give --organisation ID or --network", file=sys.stderr)
        return 2
    if args.organisation and args.organisation not in known:
        print(f"token-create: no site of the inventory belongs to organisation {args.organisation!r}; "
              f"known: {', '.join(known) or '(none)'}", file=sys.stderr)
        return 2
    path = tokens.path_for(cfg)
    token, entry = tokens.issue(path, tokens.NETWORK if args.network else args.organisation, args.label)
    print(token)
    print(f"token {entry.id} for {_scope(entry.scope)} added to {path}: it is shown this once, "
          "keep it like a password", file=sys.stderr)
    return 0


def listing(cfg, args) -> int:
    for entry in tokens.read(tokens.path_for(cfg)):
        print(f"{entry.id}\t{_scope(entry.scope)}\t{entry.created}\t{entry.label}")
    return 0


def revoke(cfg, args) -> int:
    if not (args.token_id or args.organisation):
        print("token-revoke: give --id ID (from token-list) or --organisation ID", file=sys.stderr)
        return 2
    if args.token_id is not None and len(args.token_id) < 6:
        print("token-revoke: give at least 6 characters of the id", file=sys.stderr)
        return 2
    gone = tokens.revoke(tokens.path_for(cfg), args.token_id, args.organisation)
    for entry in gone:
        print(f"revoked {entry.id}\t{_scope(entry.scope)}\t{entry.label}")
    if not gone:
        print("token-revoke: no such token", file=sys.stderr)
        return 1
    return 0


def _scope(scope: str) -> str:
    return "the network" if scope == tokens.NETWORK else f"organisation {scope}"
