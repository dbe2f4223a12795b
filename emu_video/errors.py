"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """Bad input (missing file, wrong shape, bad argument): the message says what and how to fix it."""
