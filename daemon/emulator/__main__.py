"""``python -m duologue.daemon.emulator --port N``: run the emulator by hand.

It prints its URL, then the API keys it made for this run: only they are accepted."""

from __future__ import annotations

import argparse

from .server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m duologue.daemon.emulator",
                                     description="Loopback emulator of the Anthropic and Gemini APIs.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
