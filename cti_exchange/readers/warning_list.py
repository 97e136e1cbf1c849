"""Loading the bundled warning lists (well-known benign domains, hashes, system file names, the
AS numbers of big shared networks, and the addresses of public DNS resolvers).

The lists are package data in `cti_exchange/data/warninglists/`; its README says where the
entries come from and how to update them. They are read once per process.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from cti_exchange.stix.guardrails import WarningLists

_FILES = {
    "domains": "benign-domains.txt",
    "hashes": "benign-hashes.txt",
    "file_names": "benign-file-names.txt",
    "asns": "benign-asns.txt",
    "resolvers": "benign-resolvers.txt",
}


@cache
def bundled_warning_lists() -> WarningLists:
    """The warning lists shipped with cti-exchange."""
    folder = resources.files("cti_exchange").joinpath("data", "warninglists")
    texts = {key: folder.joinpath(name).read_text(encoding="utf-8") for key, name in _FILES.items()}
    return WarningLists.parse(**texts)
