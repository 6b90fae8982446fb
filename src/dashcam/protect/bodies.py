"""Body logging switches, as in Bedrock's model invocation logging configuration.

Bedrock has ``textDataDeliveryEnabled``, ``imageDataDeliveryEnabled`` and
``embeddingDataDeliveryEnabled``; dashcam applies the same three switches per log group, at ingest:

* **text off** drops the request and response bodies (``input.inputBodyJson``,
  ``output.outputBodyJson`` and any other ``inputBody*`` / ``outputBody*`` member except the S3
  paths of offloaded bodies) — with everything they carry, images and vectors included: off
  means not kept.
* **image off** removes image payloads from the bodies that are kept: Converse ``image`` blocks,
  ``{"type": "image" | "image_url" | "input_image", ...}`` blocks (their content), and
  ``images`` / ``artifacts`` lists of image-generation requests and responses.
* **embedding off** removes vectors: ``embedding``, ``embeddings`` and ``embeddingsByType``
  anywhere in the response body.

Metrics keep working: token counts, model, operation, errors and the identity live outside the
bodies, and the fields dashcam derives *from* the response body (``latencyMs``,
``timeToFirstTokenMs``, ``stopReason``) are written into the record's top level before the body
goes, where every query and the store's typed columns find them (a field a record already has is
never overwritten, so those values are exactly what the full record would have given).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from dashcam.records import normalize

MODALITIES = ("text", "image", "embedding")
_BODY_DERIVED = ("latencyMs", "timeToFirstTokenMs", "stopReason")
_IMAGE_KEYS = frozenset({"image", "images", "artifacts", "image_url", "inputImage", "inputImages"})
_IMAGE_BLOCK_TYPES = frozenset({"image", "image_url", "input_image", "output_image"})
_EMBEDDING_KEYS = frozenset({"embedding", "embeddings", "embeddingsByType"})


@dataclass(frozen=True)
class BodySwitches:
    """Which kinds of body data are kept (all by default, as Bedrock logs them once enabled)."""

    text: bool = True
    image: bool = True
    embedding: bool = True

    @property
    def all_on(self) -> bool:
        """True when nothing is dropped."""
        return self.text and self.image and self.embedding

    def as_dict(self) -> dict[str, bool]:
        """``{"text": ..., "image": ..., "embedding": ...}``."""
        return {"text": self.text, "image": self.image, "embedding": self.embedding}


def _is_body_key(key: str, prefix: str) -> bool:
    return key.startswith(prefix) and not key.endswith("S3Path")


def drop_bodies(record: dict[str, Any], switches: BodySwitches, *, source: str, provider: str) -> Counter[str]:
    """Remove from ``record`` (in place) what ``switches`` turn off; returns what was dropped, by
    modality. ``source`` and ``provider`` are those the record is normalized with at ingest."""
    dropped: Counter[str] = Counter()
    if switches.all_on:
        return dropped
    sections = [(record.get("input"), "inputBody"), (record.get("output"), "outputBody")]
    bodies = [(section, key) for section, prefix in sections if isinstance(section, dict)
              for key in list(section) if _is_body_key(key, prefix)]
    if not bodies:
        return dropped
    derived = normalize(dict(record), source=source, provider=provider)  # a shallow copy: record unchanged
    for name in _BODY_DERIVED:
        if record.get(name) is None and derived.get(name) is not None:
            record[name] = derived[name]
    for section, key in bodies:
        if not switches.text:
            del section[key]
            dropped["text"] += 1
            continue
        if not switches.image:
            dropped["image"] += _drop_images(section[key])
        if not switches.embedding:
            dropped["embedding"] += _drop_keys(section[key], _EMBEDDING_KEYS)
    return dropped


def _containers(root: Any) -> Any:
    """Every dict and list inside ``root`` (itself included), parents before children, without
    recursion (bodies nest as deep as JSON parsers allow). A node's children are taken after the
    caller is done with the node, so what the caller deletes is not visited."""
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, (dict, list)):
            yield node
            pending.extend(node.values() if isinstance(node, dict) else node)


def _drop_images(root: Any) -> int:
    count = 0
    for node in _containers(root):
        if not isinstance(node, dict):
            continue
        if node.get("type") in _IMAGE_BLOCK_TYPES:
            for key in [k for k in node if k != "type"]:
                del node[key]
            count += 1
            continue
        for key in [k for k in node if k in _IMAGE_KEYS]:
            del node[key]
            count += 1
    return count


def _drop_keys(root: Any, keys: frozenset[str]) -> int:
    count = 0
    for node in _containers(root):
        if isinstance(node, dict):
            for key in [k for k in node if k in keys]:
                del node[key]
                count += 1
    return count
