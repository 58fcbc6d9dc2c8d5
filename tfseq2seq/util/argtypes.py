"""``argparse`` types shared by the CLI, the server and the benchmarks."""


def _int_at_least(minimum):
    """An ``argparse`` type: an int >= ``minimum`` (the error names the value)."""

    def parse(text):
        import argparse

        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1)  # argparse type of counts such as --num_batch_threads
nonnegative_int = _int_at_least(0)  # ... and of options where 0 means "TensorFlow's choice"
