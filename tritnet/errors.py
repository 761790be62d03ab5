"""Errors shared by the data readers (torch-free, so ``tritnet.darknet`` can raise them)."""


class DataError(ValueError):
    """A dataset file is missing, unreadable or malformed.

    The message always starts with the offending path (and line, for text files), so a
    failure deep inside a 50,000-image epoch still says which file to look at.
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Errors raised in decode worker processes travel back pickled; the default
        # reduce would call DataError(message) and lose the two-argument signature.
        return type(self), (self.path, self.reason)
