"""``python -m duologue.daemon``: the daemon in the foreground (what clients spawn);
``python -m duologue.daemon db ...``: store maintenance (see ``maintenance``)."""

from __future__ import annotations

import argparse
import os
import sys

from .home import UMASK
from .server import run_daemon
from .settings import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    os.umask(UMASK)  # everything the daemon writes is its user's alone
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["db"]:  # store maintenance, run by `duologue db` as a subprocess
        from .store.maintenance import main as db_main

        return db_main(args[1:])
    parser = argparse.ArgumentParser(prog="duologue daemon")
    parser.add_argument("--emulator", action="store_true",
                        help="answer with the offline provider emulator instead of real providers")
    parser.add_argument("--emulator-if-no-key", action="store_true",
                        help="use the emulator only when no provider has an API key")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(emulator=args.emulator)
    except ConfigError as exc:
        print(f"duologue: {exc}", file=sys.stderr)
        return 2
    no_key = not any(p.configured for p in settings.providers.values())
    return run_daemon(settings, emulator=settings.emulator or (args.emulator_if_no_key and no_key))


if __name__ == "__main__":
    sys.exit(main())
