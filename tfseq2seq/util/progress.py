"""Progress bars for long work (tqdm on a terminal, silent otherwise)."""

import sys


class _Silent:
    def update(self, n=1):
        pass

    def close(self):
        pass


def progress_bar(total, description, enabled=True):
    """A tqdm bar writing to stderr, or a no-op when disabled."""
    if not enabled:
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="ex", file=sys.stderr, leave=False)
