"""The ``tfseq2seq`` command line (``app.main``)."""


def main(argv=None):
    """Entry point of the ``tfseq2seq`` command; returns the exit status."""
    from tfseq2seq.cli.app import main as run

    return run(argv)
