"""Data protection at ingest: masking sensitive data per log group, body logging switches, and
the encrypted originals that let admins unmask (see docs/data-protection.md).

It sits between the store and everything above it: :class:`ProtectedStore` decorates the store
port, so every ingest path is covered in one place. It imports records and the store port, never
the query engine, the service or the API.
"""

from dashcam.protect.masking_store import ProtectedStore, Protection
from dashcam.protect.policy import Policy, PolicyBook

__all__ = ["Policy", "PolicyBook", "ProtectedStore", "Protection"]
