"""How tritnet.data fails and warns: every failure, and every skipped entry, names the file it came from."""
import warnings

from ..errors import DataError  # noqa: F401  (raised by every reader here)


class DataWarning(UserWarning):
    """A data entry that was skipped (a bad box, a missing label file, an unreadable image)."""


class Issues:
    """Collects skipped entries; each distinct (file, problem) is warned about once, as ``FILE: problem;
    skipped`` (the classifier and the detector loaders alike)."""

    def __init__(self, warn: bool = True):
        self.warn, self.items, self._seen = warn, [], set()

    def report(self, where, problem: str) -> None:
        key = (str(where), problem)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(key)
        if self.warn:
            warnings.warn(f"{where}: {problem}; skipped", DataWarning, stacklevel=2)

    def __len__(self) -> int:
        return len(self.items)


class UnknownClasses:
    """Objects of classes the names list lacks, per class name: how many, and the first file naming one.
    darknet's voc_label.py and COCO readers drop them without a word; here one line per image set says what was left out, so a
    misspelt or forgotten name shows without a warning per object."""

    def __init__(self):
        self.seen: dict = {}

    def add(self, name: str, where) -> None:
        self.seen.setdefault(name, [0, str(where)])[0] += 1

    def report(self, issues: Issues, source) -> None:
        if self.seen:
            total = sum(n for n, _ in self.seen.values())
            detail = "; ".join(f"{name}: {n}, first in {first}" for name, (n, first) in self.seen.items())
            issues.report(source, f"{total} objects of classes not in the names list ({detail})")
