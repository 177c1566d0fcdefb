"""The ``lrsweep`` command's top-level parser: its commands, their one-line help and examples.

It imports neither JAX nor anything heavy, so ``lrsweep --help`` and ``lrsweep --version`` answer at once
(``lrsweep.__main__`` answers them here); :mod:`lrsweep.cli` adds each command's options to the parsers
made here and runs the commands.
"""

from __future__ import annotations

import argparse
import sys

from ._text import printable
from ._version import __version__

#: Each command and its one-line help; bench, map and figures parse their own options (add_help off).
COMMANDS = {
    "run": "run a sweep and print a summary table",
    "show": "print the summary table and the suggested lr of a stored sweep, without rerunning it",
    "explore": "write one self-contained, offline HTML page to explore a sweep",
    "export": "write a store's summary (one row per config) to CSV or Parquet",
    "verify": "check every finished chunk of a store against its checksum; exit 1 if any is damaged",
    "trace": "print the lesson's per-epoch lines for one learning rate",
    "bench": "the benchmark suite (lrsweep bench --help for its options)",
    "map": "a trainability map over two lrs, or an init or hyperparameter and an lr (lrsweep map --help)",
    "figures": "the lecture figure gallery (lrsweep figures --help for its options)",
    "info": "print versions, backend and devices",
}
OWN_PARSERS = ("bench", "map", "figures")

#: An example block at the end of each command's --help.
EPILOGS = {
    "lrsweep": """examples:
  lrsweep run                                   the default sweep: the lesson, 256 lrs from 1e-4 to 10
  lrsweep run --lr log:1e-3:1:64 --out s.zarr   stream results to a resumable store
  lrsweep show s.zarr                           its summary table, without rerunning
  lrsweep explore s.zarr --out page.html        one offline HTML page to explore it
  lrsweep <command> --help                      a command's options and their defaults""",
    "run": """examples:
  lrsweep run                                   the lesson, 256 lrs log-spaced from 1e-4 to 10
  lrsweep run --lr 0.01,0.1,1 --grad forward --precision mixed
  lrsweep run --problem mlp --lr W0=log:0.1:100:32 --lr W1=log:0.1:100:32 --init 4
  lrsweep run sweep.toml --out sweep.zarr       a spec file; Ctrl-C'd? the same command resumes
  lrsweep run --json | jq .outcomes             a machine-readable summary""",
    "show": """examples:
  lrsweep run --lr log:1e-4:1:65536 --out sweep.zarr --quiet
  lrsweep show sweep.zarr""",
    "explore": """examples:
  lrsweep explore sweep.zarr --out page.html    open page.html#lr=0.1 to start at lr 0.1
  lrsweep explore sweep.toml --out page.html    runs the spec's sweep first""",
    "export": """examples:
  lrsweep export sweep.zarr summary.csv
  lrsweep export sweep.zarr summary.parquet""",
    "verify": """examples:
  lrsweep verify sweep.zarr                     lists damage; the same run command repairs it""",
    "trace": """examples:
  lrsweep trace --lr 0.01 --epochs 10           the lesson notebook's printed lines, exactly
  lrsweep trace --lr 1 --epochs 5 --param b""",
    "info": """examples:
  lrsweep info
  lrsweep info --json""",
}


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (``lrsweep: error: ...``, exit 2), like every other error."""

    def error(self, message: str):  # type: ignore[override]
        print(f"lrsweep: error: {printable(message)} ({self.prog} --help lists the options)", file=sys.stderr)
        raise SystemExit(2)


def top_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``lrsweep`` parser, and each command's parser by name, still without the command's options."""
    parser = Parser(
        prog="lrsweep",
        description="Train many learning rates at once, in JAX.",
        epilog=EPILOGS["lrsweep"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lrsweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name, text in COMMANDS.items():
        if name in OWN_PARSERS:  # listed for --help; lrsweep.cli hands their arguments on
            commands[name] = sub.add_parser(name, help=text, add_help=False)
        else:
            commands[name] = sub.add_parser(
                name,
                help=text,
                description=text,
                epilog=EPILOGS[name],
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
    return parser, commands
