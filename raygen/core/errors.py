"""User-facing errors: each says what was wrong and how to fix it.

The CLI prints these without a traceback and exits non-zero; inside a trial they are
recorded as the trial's error and the sweep goes on.
"""


class RaygenError(Exception):
    """A bad input (config, sweep file, data folder, weights file) the user can fix."""


class DataMissingError(RaygenError):
    """A dataset's files are absent and could not be downloaded."""


def did_you_mean(name: str, choices) -> str:
    import difflib

    choices = list(choices)
    same = [c for c in choices if str(c).lower() == str(name).lower()]  # names are lower case: MNIST -> mnist
    close = same or difflib.get_close_matches(str(name), choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def one_line_parser(**kwargs):
    """An ``argparse.ArgumentParser`` whose errors are one line (what was wrong, where help is)
    rather than its usage block, with exit status 2 as argparse's."""
    import argparse
    import sys

    class Parser(argparse.ArgumentParser):
        def error(self, message: str):
            print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
            sys.exit(2)

    return Parser(**kwargs)
