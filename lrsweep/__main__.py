"""The ``lrsweep`` command (and ``python -m lrsweep``): ``--help`` and ``--version`` answer from the light
top-level parser (:mod:`lrsweep.cli_parser`) without importing JAX; every command goes to :mod:`lrsweep.cli`."""

from __future__ import annotations

import sys

from .cli_parser import top_parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv in ([], ["-h"], ["--help"], ["--version"]):
        top_parser()[0].parse_args(argv)  # prints the help, the version or the missing command; exits
    from .cli import main as run_command  # JAX loads here, for a command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
