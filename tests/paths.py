"""Where the tests find the shared, read-only data: beside the project root, never copied into it."""
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
