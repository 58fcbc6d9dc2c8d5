"""Errors the CLI prints as one line (no traceback), exiting with status 2."""


class CliError(Exception):
    """A usage error found by a command (e.g. no input, conflicting options)."""


def is_user_error(error):
    """True for errors that come from the user's input, config, files or server, which
    the CLI reports as ``tfseq2seq: error: ...`` (set ``TFSEQ2SEQ_DEBUG`` for tracebacks)."""
    from tfseq2seq.config import ConfigError
    from tfseq2seq.serving.client import ServingError

    return isinstance(error, (CliError, ConfigError, ServingError, OSError, ValueError))
