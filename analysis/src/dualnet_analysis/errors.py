"""The one error a user can act on: an input file that is not what dualnet writes.

The command line turns it into a single line on stderr and exit code 2; every other
exception is a bug and keeps its traceback.
"""


class InputError(Exception):
    """An input path that cannot be analysed; the message names the file and the reason."""


class Refusal(InputError):
    """Several problems found at once (e.g. in a sweep); the command prints one line per problem."""

    def __init__(self, lines):
        super().__init__("; ".join(lines))
        self.lines = list(lines)
