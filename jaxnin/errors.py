"""The one exception type that reaches the user as a single line."""


class JaxninError(Exception):
    """A problem the user can fix: the message says what, where, and what to do.

    Command-line entry points print it as one line on stderr and exit with code 2;
    a traceback is shown only with --debug.
    """


class Interrupted(JaxninError):
    """A run stopped by Ctrl-C or SIGTERM; its message says what it kept and how to go on."""
