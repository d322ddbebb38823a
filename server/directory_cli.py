"""``printfarm-server directory``: the regional directory as a table (docs/directory.md).

It asks the running collector's ``/api/directory`` (``[http]`` of the config, or ``--url``) with
the token of ``--token-file`` or ``$PRINTFARM_TOKEN``, so it gives the same answer as the API and
the status page. The table fits 100 columns; ``--json`` prints the answer as it came.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from server.directory_query import BadQuery, from_params

WIDTH = 100
# (heading, width, cell): the widths add up to WIDTH with one space between columns
COLUMNS = (("PRINTER", 16), ("SITE", 22), ("COUNTY", 11), ("VOLUME mm", 11), ("NOZZLE", 7),
           ("MATERIALS", 16), ("FREE", 11))
TOKEN_ENV = "PRINTFARM_TOKEN"


def add_arguments(parser) -> None:
    group = parser.add_argument_group("directory")
    group.add_argument("--material", help="directory: a material loaded or kept, e.g. PETG (PETG-CF matches too)")
    group.add_argument("--min-volume", metavar="XxYxZ", help="directory: the smallest build volume, e.g. 250x250x250")
    group.add_argument("--nozzle", metavar="MM", help="directory: a nozzle diameter, e.g. 0.6")
    group.add_argument("--county", help="directory: counties, comma-separated, e.g. Uppsala,Örebro")
    group.add_argument("--free-within", metavar="TIME", help="directory: free within 2h, 90m, 1d")
    group.add_argument("--access", metavar="WHO", help="directory: open to members, companies, students or public")
    group.add_argument("--url", help="directory: the collector's HTTP API (default: from [http])")
    group.add_argument("--token-file", type=Path, help=f"directory: a file holding an API token (or ${TOKEN_ENV})")
    group.add_argument("--json", action="store_true", help="directory: print the answer as JSON")


def run(cfg, args, out=sys.stdout) -> int:
    params = {"material": args.material, "min_volume": args.min_volume, "nozzle": args.nozzle,
              "county": args.county, "free_within": args.free_within, "access": args.access}
    params = {k: v for k, v in params.items() if v}
    try:
        from_params(params)  # the same checks as the API's, before asking it
        answer = fetch(args.url or _url(cfg), params, _token(args))
    except (BadQuery, LookupError) as exc:
        print(f"directory: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=1), file=out)
    else:
        print(table(answer["printers"]), file=out)
    return 0


def _url(cfg) -> str:
    host = cfg.http.host if cfg.http.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{cfg.http.port}"


def _token(args) -> str | None:
    if args.token_file:
        try:
            return args.token_file.read_text().strip() or None
        except OSError as exc:
            raise LookupError(f"--token-file: cannot read {args.token_file} ({exc.strerror}) — fix: pass a "
                              "file that holds a token (printfarm-server token-create)") from None
    return os.environ.get(TOKEN_ENV) or None


def fetch(base: str, params: dict, token: str | None) -> dict:
    request = Request(f"{base.rstrip('/')}/api/directory?{urlencode(params)}",
                      headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())
    except HTTPError as exc:
        if exc.code == 401:
            raise LookupError(f"the collector at {base} wants a token — fix: pass --token-file or set "
                              f"${TOKEN_ENV} (printfarm-server token-create)") from None
        detail = _error_of(exc)
        raise LookupError(f"the collector at {base} answered {exc.code}{': ' + detail if detail else ''}") from None
    except (URLError, OSError, ValueError) as exc:
        raise LookupError(f"cannot reach the collector at {base} ({getattr(exc, 'reason', exc)}) — fix: start "
                          "it, or pass --url") from None


def _error_of(exc: HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", ""))
    except (ValueError, AttributeError, OSError):
        return ""


def table(printers: list[dict]) -> str:
    lines = [_line(name for name, _ in COLUMNS)]
    lines += [_line(_cells(p)) for p in printers]
    lines.append(f"{len(printers)} printer(s)" if printers else "No printer matches.")
    return "\n".join(lines)


def _line(cells) -> str:
    return " ".join(_fit(str(cell), width) for cell, (_, width) in zip(cells, COLUMNS)).rstrip()


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[:width - 1] + "…"


def _cells(p: dict) -> list[str]:
    volume = "x".join(f"{v:g}" for v in p["volume"]) if p.get("volume") else "?"
    nozzle = ",".join(f"{n:g}" for n in p.get("nozzles") or []) or "?"
    materials = ", ".join(dict.fromkeys([*p.get("loaded", []), *p.get("materials", [])])) or "?"
    return [p["name"], p["site_name"], p["county"], volume, nozzle, materials, free(p)]


def free(p: dict) -> str:
    if p.get("publish") != "live":
        return "not shared"
    if p.get("available"):
        return "now"
    seconds = p.get("free_in_s")
    if seconds is None:
        return p.get("state") or "unknown"
    minutes = round(seconds / 60)
    return f"in {minutes // 60}h{minutes % 60:02d}" if minutes >= 60 else f"in {minutes} min"
