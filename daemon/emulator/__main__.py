"""``python -m duologue.daemon.emulator --port N``: run the emulator by hand."""

from __future__ import annotations

import argparse

from .server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m duologue.daemon.emulator",
                                     description="Loopback emulator of the Anthropic and Gemini APIs.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--invalid-key-prefix", default="invalid",
                        help="API keys starting with this are rejected (default: invalid)")
    args = parser.parse_args(argv)
    serve(args.host, args.port, invalid_key_prefix=args.invalid_key_prefix)


if __name__ == "__main__":
    main()
