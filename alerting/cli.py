"""`outagewatch silence add | list | expire`: silences the running worker reads.

>>> duration_ms("2h"), duration_ms("90m"), duration_ms("1h30m"), duration_ms("45s"), duration_ms("1d")
(7200000, 5400000, 5400000, 45000, 86400000)
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import re
from typing import Any

from alerting.silence_store import SilenceStore
from core.config import ConfigError, Settings
from core.timeutil import SystemClock, format_ms, span

log = logging.getLogger(__name__)

_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    """``2h``, ``90m``, ``1h30m``, ``45s``, ``1d`` in milliseconds."""
    compact = text.replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 2h, 90m, 1h30m or 1d")
    total = sum(int(n) * _UNIT_MS[u] for n, u in parts)
    if total <= 0:
        raise argparse.ArgumentTypeError("a silence must last longer than 0 s")
    return total


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "silence",
        help="silence alerts by their labels (add), see the active silences (list), end one (expire)",
        description="Silences stop pages, not alerts: a silenced alert is still published and stored, "
                    "only not notified. They live in the file alerting.silences_path "
                    "(OUTAGEWATCH_ALERTING_SILENCES_PATH), which the running worker re-reads at its next "
                    "window (within seconds); run this where the worker runs or on a volume it shares. "
                    "Every page carries the 'silence add' line that silences it.",
    )
    commands = parser.add_subparsers(dest="silence_command", metavar="ACTION", required=True)
    add = commands.add_parser(
        "add",
        help="silence the alerts whose labels match every --match",
        description="Labels an alert carries: alertname and kind (the alert kind, e.g. crash), scope "
                    "(room, service, cluster, global...), key (the room, service or group), severity, "
                    "and the decision's labels such as region or cluster. Prints the silence id.",
        epilog="example: outagewatch silence add --match scope=room --match key=room-17 --duration 2h "
               "--comment 'CDN maintenance, CHG-1234'",
    )
    add.add_argument("--match", action="append", required=True, metavar="LABEL=VALUE",
                     help="a matcher: name=value, name!=value, name=~regex or name!~regex (a regex matches the "
                          "whole value); repeat for more, all must match")
    add.add_argument("--duration", type=duration_ms, default=duration_ms("2h"), metavar="DURATION",
                     help="how long from now: 2h, 90m, 1h30m, 1d (default: 2h)")
    add.add_argument("--comment", required=True, help="why, for whoever is paged next (a ticket, a change id)")
    add.add_argument("--author", default=None, help="who silenced it (default: your login name)")
    add.set_defaults(func=_add)
    listing = commands.add_parser("list", help="the active silences, soonest to end first",
                                  description="One line per active silence: id, end, matchers, author, comment.")
    listing.add_argument("--json", action="store_true", help="print them as JSON (the store's own fields)")
    listing.set_defaults(func=_list)
    expire = commands.add_parser("expire", help="end a silence now (pages resume at the next window)",
                                 description="Ends the silence with this id (see 'silence list').")
    expire.add_argument("id", help="the silence id that 'silence add' printed")
    expire.set_defaults(func=_expire)


def _store(settings: Settings) -> SilenceStore:
    return SilenceStore(settings.alerting.silences_path, SystemClock())


def _add(settings: Settings, args: argparse.Namespace) -> int:
    clock = SystemClock()
    try:
        silence_id = _store(settings).add(args.match, clock.now_ms() + args.duration, comment=args.comment,
                                          created_by=args.author or getpass.getuser())
    except ValueError as exc:
        raise ConfigError(f"silence not added: {exc}") from None
    print(silence_id)
    log.info("silenced %s for %s (until %s) in %s", " ".join(args.match), span(args.duration),
             format_ms(clock.now_ms() + args.duration), settings.alerting.silences_path)
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    silences = _store(settings).listed()
    if args.json:
        print(json.dumps([s.to_state() for s in silences], indent=1))
        return 0
    now = SystemClock().now_ms()
    for s in silences:
        matchers = " ".join(f"{m.name}{m.op}{m.value}" for m in s.matchers)
        print(f"{s.id}  ends {format_ms(s.ends_at_ms)} (in {span(s.ends_at_ms - now)})  {matchers}  "
              f"by {s.created_by or '?'}: {s.comment}")
    if not silences:
        log.info("no active silences in %s", settings.alerting.silences_path)
    return 0


def _expire(settings: Settings, args: argparse.Namespace) -> int:
    try:
        _store(settings).expire(args.id)
    except KeyError:
        raise ConfigError(f"no active silence {args.id!r} in {settings.alerting.silences_path}; "
                          "see 'outagewatch silence list'") from None
    log.info("expired silence %s", args.id)
    return 0
