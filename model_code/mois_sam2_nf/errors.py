"""Project-wide exception for bad input at a boundary (files, CLI arguments, clicks, checkpoints).

The CLI turns an :class:`InputError` into one line on stderr (``error: <message>``) and exit code 1, so every
message must name the offending file or value and the problem, in one line.
"""


class InputError(Exception):
    """Bad user input: corrupt or mismatched file, invalid click, missing weights, unknown model, ..."""
