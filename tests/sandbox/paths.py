"""Where the sandbox keeps things. Everything generated lives under .tmp/."""
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TMP = Path(os.environ.get("SANDBOX_TMP", REPO_ROOT / ".tmp"))
VENV_BIN = Path(sys.executable).parent
# ansible_collections/circleci_server/aws -> this checkout
COLLECTIONS_ROOT = TMP / "collections"
COLLECTION_LINK = COLLECTIONS_ROOT / "ansible_collections" / "circleci_server" / "aws"


def ensure_collection_link():
    """Make this checkout importable as the collection circleci_server.aws."""
    COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
    if COLLECTION_LINK.is_symlink() and COLLECTION_LINK.resolve() == REPO_ROOT:
        return COLLECTIONS_ROOT
    if COLLECTION_LINK.is_symlink() or COLLECTION_LINK.exists():
        COLLECTION_LINK.unlink()
    COLLECTION_LINK.symlink_to(REPO_ROOT, target_is_directory=True)
    return COLLECTIONS_ROOT
