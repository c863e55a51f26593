"""Run moto server with the emulator patches: `python -m lakeops.emulator.server --port P --cert C --key K`."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server over TLS with the lakeops emulator patches")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)

    from moto import server

    from lakeops.emulator import patches

    patches.apply()
    server.main(["-H", "127.0.0.1", "-p", str(args.port), "-c", args.cert, "-k", args.key])


if __name__ == "__main__":
    main(sys.argv[1:])
