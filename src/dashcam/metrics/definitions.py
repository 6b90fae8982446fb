"""The metric table: every metric dashcam serves, what one sample of it is, and which records give one.

Bedrock publishes its runtime metrics in the ``AWS/Bedrock`` namespace (reference §2); dashcam
derives the same metrics from the invocation records, with the same counting rules, and adds its
own (cost, cache tokens, generation speed, error rate) in the same namespace:

* A record is an *invocation record* when it names a model (``modelId``); other events in a log
  group (free text sent through PutLogEvents) give no samples at all.
* A request *succeeded* when it has no ``errorCode`` and is not throttled. Only successful
  requests are ``Invocations``; throttles and errors are not (AWS: "throttled and errored
  requests are not counted in Invocations"), and the token, latency and quota metrics are
  emitted for successful requests only.
* Failures fall into exactly one class (:data:`ERROR_CLASSES`): *throttle* when the record's
  ``throttled`` flag is set (``ThrottlingException``, HTTP 429 from any provider), else *client*
  (a 4xx code, or a name in the table), else *server* (5xx codes, the table's server names, and
  any code dashcam does not know — the service failed to answer).
* ``TimeToFirstToken`` is a streaming metric: only ``ConverseStream`` and
  ``InvokeModelWithResponseStream`` records give a sample.
* ``EstimatedTPMQuotaUsage`` is what a request burns of the tokens-per-minute quota:
  input tokens + cache-write tokens + output tokens x the model's output burndown rate. Cache
  reads do not count. The burndown rate is 5 for the Claude models AWS lists with a 5x output
  burndown (Claude 3.7 Sonnet and the Claude 4 family: Sonnet 4/4.5, Opus 4/4.1/4.5, Haiku 4.5,
  matched by :data:`OUTPUT_BURNDOWN` in the model id, so inference-profile ARNs match too) and 1
  for every other model. This is an estimate from the logged counts, as AWS's metric is.

Each metric is one :class:`Metric` row: its name, its CloudWatch unit, the per-record sample as a
SQL expression over the store's typed columns, and the record filter. Both are built as sqlglot
trees for the store's dialect, so one table serves DuckDB and ClickHouse.

Dimensions (:func:`dimension_expression`): ``ModelId``, ``Operation``, ``Caller`` (the caller's
``identity.arn``), ``App`` and ``UserId`` read typed columns; any other dimension name is a key of
the record's ``requestMetadata`` (``team``, ``tenant``, ...), read from the JSON message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from dashcam.errors import InputError
from dashcam.query.dialects import Dialect, and_, binop, case, col, fn, is_null, json_pointer, lit, not_null, or_
from dashcam.records import THROTTLING_CODES

NAMESPACE = "AWS/Bedrock"

STREAMING_OPERATIONS = ("ConverseStream", "InvokeModelWithResponseStream")

# Model-id fragments with a 5x output-token burndown, as AWS lists them (quotas-token-burndown).
OUTPUT_BURNDOWN: tuple[tuple[str, int], ...] = (
    ("claude-3-7-sonnet", 5),
    ("claude-sonnet-4", 5),
    ("claude-opus-4", 5),
    ("claude-haiku-4", 5),
)

# Every error code dashcam classifies, by class. Throttles are decided by the record's
# ``throttled`` flag (set at ingest from these codes and HTTP 429); the rest are listed here.
# Numeric codes (HTTP statuses from other providers) are classified by their hundreds.
ERROR_CLASSES: dict[str, str] = {
    **{code: "throttle" for code in sorted(THROTTLING_CODES)},
    # Bedrock runtime's 4xx exceptions
    "ValidationException": "client",
    "AccessDeniedException": "client",
    "ResourceNotFoundException": "client",
    "ModelTimeoutException": "client",
    "ModelNotReadyException": "client",
    "ServiceQuotaExceededException": "client",
    "ModelErrorException": "client",
    "ConflictException": "client",
    "UnrecognizedClientException": "client",
    "ExpiredTokenException": "client",
    "InvalidSignatureException": "client",
    # what OpenAI-compatible and Anthropic APIs call their 4xx errors
    "invalid_request_error": "client",
    "authentication_error": "client",
    "permission_error": "client",
    "not_found_error": "client",
    "request_too_large": "client",
    "context_length_exceeded": "client",
    # Bedrock runtime's 5xx exceptions
    "InternalServerException": "server",
    "ServiceUnavailableException": "server",
    "ModelStreamErrorException": "server",
    "InternalFailure": "server",
    # other providers' 5xx errors
    "api_error": "server",
    "server_error": "server",
    "overloaded_error": "server",
}
CLIENT_ERROR_CODES = tuple(code for code, kind in ERROR_CLASSES.items() if kind == "client")

# Dimensions read from typed columns; any other name is a requestMetadata key.
DIMENSION_COLUMNS: dict[str, str] = {
    "ModelId": "model_id",
    "Operation": "operation",
    "Caller": "identity_arn",
    "App": "app",
    "UserId": "user_id",
}
# Bedrock's requestMetadata key alphabet (letters, digits, space and : _ @ $ # = / + , - .).
_METADATA_KEY = re.compile(r"[A-Za-z0-9 :_@$#=/+,\-.]{1,256}")


@dataclass(frozen=True)
class Metric:
    """One metric: name, CloudWatch unit, what a sample is, and which records give one.

    ``sample`` and ``where`` build SQL expressions for a dialect: a record gives a sample when it
    is an invocation record (:func:`invocation_record`), ``where`` holds, and the sample is not
    NULL (a missing count or latency is no sample, never a zero). ``origin`` is ``AWS`` for the metrics
    Bedrock itself publishes and ``dashcam`` for dashcam's own. ``dimension_sets`` holds the sets
    of dimension names (each sorted) the metric can be asked for, when it cannot take every set
    (None): GetMetricData refuses the others and ListMetrics never lists them.
    """

    name: str
    unit: str
    description: str
    sample: Callable[[Dialect], exp.Expression]
    where: Callable[[Dialect], exp.Expression]
    origin: str = "AWS"
    dimension_sets: tuple[tuple[str, ...], ...] | None = None

    def accepts(self, names: Sequence[str]) -> bool:
        """True when the metric can be asked for with exactly the dimensions ``names`` (any order)."""
        return self.dimension_sets is None or tuple(sorted(names)) in self.dimension_sets


# ---------------------------------------------------------------------- record classes


def invocation_record(d: Dialect) -> exp.Expression:
    """The record is a model invocation (names a model): the base of every metric."""
    return not_null(col("model_id"))


def _not_throttled() -> exp.Expression:
    return exp.EQ(this=exp.Coalesce(this=col("throttled"), expressions=[lit(0)]), expression=lit(0))


def succeeded(d: Dialect) -> exp.Expression:
    """No error code and not throttled."""
    return and_(is_null(col("error_code")), _not_throttled())


def throttled(d: Dialect) -> exp.Expression:
    """Throttled (``ThrottlingException``, HTTP 429, ...)."""
    return exp.EQ(this=col("throttled"), expression=lit(1))


def _client_code(d: Dialect) -> exp.Expression:
    listed = exp.In(this=col("error_code"), expressions=[lit(c) for c in CLIENT_ERROR_CODES])
    return or_(listed, d.regex_full_match(col("error_code"), r"4\d\d"))


def client_error(d: Dialect) -> exp.Expression:
    """Failed with a client-side (4xx) error, not a throttle."""
    return and_(not_null(col("error_code")), _not_throttled(), _client_code(d))


def server_error(d: Dialect) -> exp.Expression:
    """Failed with a server-side error (5xx, or a code dashcam does not know), not a throttle."""
    return and_(not_null(col("error_code")), _not_throttled(), exp.Not(this=exp.Paren(this=_client_code(d))))


def failed(d: Dialect) -> exp.Expression:
    """Any failure: an error code or a throttle."""
    return or_(not_null(col("error_code")), throttled(d))


def error_class(code: str | None, *, is_throttled: bool = False) -> str | None:
    """The class of an error code as the metrics count it: ``throttle``, ``client``, ``server``,
    or None for a successful request (the same rules as the SQL filters, for callers in Python)."""
    if is_throttled:
        return "throttle"
    if code is None:
        return None
    if re.fullmatch(r"4\d\d", code) or ERROR_CLASSES.get(code) == "client":
        return "client"
    return "server"


# ---------------------------------------------------------------------- samples


def _one(d: Dialect) -> exp.Expression:
    return lit(1)


def _column(name: str) -> Callable[[Dialect], exp.Expression]:
    return lambda d: col(name)


def _zero_if_null(name: str) -> exp.Expression:
    return exp.Coalesce(this=col(name), expressions=[lit(0)])


def burndown(d: Dialect) -> exp.Expression:
    """The model's output-token burndown rate (see :data:`OUTPUT_BURNDOWN`)."""
    return case(*((d.contains(col("model_id"), lit(fragment)), lit(rate)) for fragment, rate in OUTPUT_BURNDOWN),
                default=lit(1))


def _quota_usage(d: Dialect) -> exp.Expression:
    output = binop(exp.Mul, _zero_if_null("output_tokens"), burndown(d))
    return binop(exp.Add, binop(exp.Add, _zero_if_null("input_tokens"), _zero_if_null("cache_write_tokens")), output)


def _has_tokens(d: Dialect) -> exp.Expression:
    return and_(succeeded(d), or_(not_null(col("input_tokens")), not_null(col("output_tokens"))))


def _generation_ms() -> exp.Expression:
    return binop(exp.Sub, col("latency_ms"), exp.Coalesce(this=col("ttft_ms"), expressions=[lit(0)]))


def _tokens_per_second(d: Dialect) -> exp.Expression:
    return binop(exp.Div, binop(exp.Mul, col("output_tokens"), lit(1000.0)), _generation_ms())


def _generating(d: Dialect) -> exp.Expression:
    return and_(succeeded(d), exp.GT(this=col("output_tokens"), expression=lit(0)),
                exp.GT(this=_generation_ms(), expression=lit(0)))


def _streaming_ttft(d: Dialect) -> exp.Expression:
    # The cheap test first: most records have no time to first token (non-streaming calls), and
    # DuckDB then skips the text comparisons; and in an aggregate's FILTER, DuckDB runs two
    # equalities joined by OR faster than IN over two values. Together they took this metric's
    # aggregate from ~130 to ~80 ms CPU over 8.6M records (bench/bench_metrics.py).
    streaming = or_(*(exp.EQ(this=col("operation"), expression=lit(op)) for op in STREAMING_OPERATIONS))
    return and_(not_null(col("ttft_ms")), succeeded(d), streaming)


def _image_count(d: Dialect) -> exp.Expression:
    """Images in the logged response body (``output.outputBodyJson.images``, as Titan Image,
    Nova Canvas and Stability models answer), else 1 when the record carries the image's size
    (``output.outputImageHeight``, logged when the image itself went to S3)."""
    message = col("message")
    if d.name == "clickhouse":
        path = [lit("output"), lit("outputBodyJson"), lit("images")]
        count = case((exp.EQ(this=fn("JSONType", message, *path), expression=lit("Array")),
                      fn("JSONLength", message, *path)))
    else:
        count = fn("TRY", fn("json_array_length", message, lit("$.output.outputBodyJson.images")))
    sized = case((not_null(d.json_get_text(message, "/output/outputImageHeight", safe=True)), lit(1)))
    return exp.Coalesce(this=count, expressions=[sized])


def _image_record(d: Dialect) -> exp.Expression:
    # The cheap text test first: only records that mention images are parsed as JSON.
    mentions = or_(d.contains(col("message"), lit('"images"')), d.contains(col("message"), lit('"outputImageHeight"')))
    return and_(succeeded(d), mentions)


def _error_percent(d: Dialect) -> exp.Expression:
    return case((failed(d), lit(100.0)), default=lit(0.0))


def _any(d: Dialect) -> exp.Expression:
    return exp.true()


def _has_quota(d: Dialect) -> exp.Expression:
    from dashcam.metrics.quota import has_quota  # quota.py builds on this table

    return has_quota(d)


# ---------------------------------------------------------------------- the table

_TABLE: tuple[Metric, ...] = (
    Metric("Invocations", "Count", "1 per successful request (throttles and errors are not invocations)",
           _one, succeeded),
    Metric("InvocationLatency", "Milliseconds", "request sent to last token received, per successful request",
           _column("latency_ms"), succeeded),
    Metric("InvocationClientErrors", "Count", "1 per request that failed with a client-side (4xx) error",
           _one, client_error),
    Metric("InvocationServerErrors", "Count", "1 per request that failed with a server-side error", _one, server_error),
    Metric("InvocationThrottles", "Count", "1 per throttled request", _one, throttled),
    Metric("InputTokenCount", "Count", "input tokens of a successful request",
           _column("input_tokens"), succeeded),
    Metric("OutputTokenCount", "Count", "output tokens of a successful request",
           _column("output_tokens"), succeeded),
    Metric("TimeToFirstToken", "Milliseconds", "request to first token, per successful streaming request",
           _column("ttft_ms"), _streaming_ttft),
    Metric("EstimatedTPMQuotaUsage", "Count",
           "input + cache-write + output tokens x the model's output burndown rate, per successful request",
           _quota_usage, _has_tokens),
    Metric("OutputImageCount", "Count", "images generated by a successful request of an image model",
           _image_count, _image_record),
    Metric("CostUSD", "None", "the request's cost in US dollars (unpriced requests give no sample)",
           _column("cost_usd"), lambda d: not_null(col("cost_usd")), origin="dashcam"),
    Metric("CacheReadInputTokenCount", "Count", "input tokens read from the prompt cache, per successful request",
           _column("cache_read_tokens"), succeeded, origin="dashcam"),
    Metric("CacheWriteInputTokenCount", "Count", "input tokens written to the prompt cache, per successful request",
           _column("cache_write_tokens"), succeeded, origin="dashcam"),
    Metric("OutputTokensPerSecond", "Count/Second",
           "output tokens / generation time (latency minus time to first token when streaming), per successful "
           "request with output", _tokens_per_second, _generating, origin="dashcam"),
    Metric("ErrorRate", "Percent", "100 per failed request (error or throttle), 0 per successful one: "
           "its Average is the error rate in percent", _error_percent, _any, origin="dashcam"),
    # Computed by dashcam.metrics.quota from per-minute usage, not per record: sample/where only
    # say which records' models have a quota (for ListMetrics).
    # Quotas are per model: by ModelId or over all models, never by another dimension.
    Metric("QuotaHeadroomPct", "Percent", "100 x (1 - the peak minute's share of the model's RPM/TPM quota), "
           "per period (see dashcam.metrics.quota)", _one, _has_quota, origin="dashcam",
           dimension_sets=((), ("ModelId",))),
    Metric("QuotaMinutesToExhaustion", "None", "minutes until the usage trend reaches the model's quota, "
           "per period (see dashcam.metrics.quota)", _one, _has_quota, origin="dashcam",
           dimension_sets=((), ("ModelId",))),
)

METRICS: dict[str, Metric] = {m.name: m for m in _TABLE}


def get_metric(name: str) -> Metric:
    """The metric called ``name``; InputError listing the known ones otherwise."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown metric {name!r} in namespace {NAMESPACE}; "
                         f"known metrics: {', '.join(METRICS)}") from None


def check_dimension_name(name: str) -> str:
    """``name`` if it can be a dimension (a known one or a requestMetadata key), else InputError."""
    if not isinstance(name, str) or not (name in DIMENSION_COLUMNS or _METADATA_KEY.fullmatch(name)):
        raise InputError(f"dimension name {name!r} is not valid: use {', '.join(DIMENSION_COLUMNS)} or a "
                         "requestMetadata key (1 to 256 letters, digits, spaces and : _ @ $ # = / + , - .)")
    return name


def dimension_expression(d: Dialect, name: str) -> exp.Expression:
    """The SQL value of dimension ``name`` for a record (a column, or a requestMetadata key)."""
    check_dimension_name(name)
    if name in DIMENSION_COLUMNS:
        return col(DIMENSION_COLUMNS[name])
    return d.json_get_text(col("message"), json_pointer(("requestMetadata", name)), safe=True)
