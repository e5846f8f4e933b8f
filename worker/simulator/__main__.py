"""Command line: ``python -m worker.simulator``.

Examples::

    python -m worker.simulator --dataset worker/data --port 8765
    python -m worker.simulator --seed seed.json --port 0 --port-file port.txt
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .dataset import build_dataset_seed
from .seed import SeedError, load_seed, state_from_seed
from .server import serve
from .state import SimulatorState


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m worker.simulator",
        description="Serve a simulated Capsule CRM v2 API on loopback.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--seed", type=Path, help="seed JSON file")
    source.add_argument("--dataset", type=Path, help="CRM data set directory")
    parser.add_argument("--token", default="demo-token", help="token for --dataset")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here")
    parser.add_argument("--limit", type=int, help="requests per rate-limit window")
    parser.add_argument("--window-s", type=float, help="rate-limit window in seconds")

    return parser.parse_args(argv)


def build_state(args: argparse.Namespace) -> SimulatorState:
    """Build the tenant the command line asks for."""
    if args.seed is not None:
        state = load_seed(args.seed)
    else:
        state = state_from_seed(build_dataset_seed(args.dataset, args.token))

    limiter = state.rate_limiter
    if args.limit is not None or args.window_s is not None:
        limiter.configure(
            args.limit or limiter.limit, args.window_s or limiter.window_s
        )

    return state


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until interrupted; return the exit status."""
    args = parse_args(argv)
    try:
        state = build_state(args)
    except (SeedError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2

    serve(args.host, args.port, state, args.port_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
