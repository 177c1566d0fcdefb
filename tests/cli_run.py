"""The command line run in-process, as the tests of hostile input use it."""

from lrsweep import cli


def run_cli(capsys, *argv) -> tuple[object, str, str]:
    """``lrsweep ARGV`` through ``cli.main``: its exit code (argparse's own exits included), stdout and stderr."""
    try:
        code = cli.main(list(argv))
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err
