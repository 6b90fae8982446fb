"""``dashcam gateway``: record (and smooth) every model call without touching application code.

Point boto3's ``bedrock-runtime`` client (``endpoint_url=``) or the OpenAI client (``base_url=``)
at the gateway: it forwards each call to the real upstream — Bedrock re-signed with the gateway's
own AWS credentials, OpenAI with the caller's or the gateway's key — passes streamed answers through
chunk by chunk, records every attempt in the Bedrock record shape, and, for models given limits,
keeps traffic just under the upstream's quotas (waiting briefly, or answering 429 with
``Retry-After``) and retries the upstream's throttles within a deadline.

Modules: :mod:`.config` (settings), :mod:`.app` (the ASGI app and the call path),
:mod:`.upstream` (forwarding and signing), :mod:`.shaping` (token buckets, retries),
:mod:`.usage` (token estimates and usage), :mod:`.recording` (records, via capture's shipper),
:mod:`.replies` (provider-shaped errors), :mod:`.metrics` (Prometheus), :mod:`.server` (running it).
See docs/gateway.md.
"""

from dashcam.gateway.config import GatewayConfig, ModelLimit, load_config

__all__ = ["GatewayConfig", "ModelLimit", "load_config"]
