"""What each invocation cost: a shipped, dated price catalog, user overrides, and the cost rule.

Prices are per million tokens (input, output, cache read, cache write), with the date they take
effect. A model id is looked up as written after its ARN prefix is removed (so an
inference-profile ARN finds ``us.anthropic...``), then without its geographic prefix (``us.``,
``eu.``, ``apac.``, ``global.``, ...), because cross-Region profiles cost what the model costs unless
the catalog lists the profile itself (newer Claude geo profiles carry +10%).

The rule (:meth:`PriceCatalog.cost`): a failed call costs 0 (nothing is billed); a call with no
token counts has an unknown cost (None); an unpriced model has an unknown cost (None) — never a
silent $0. Bedrock's ``inputTokenCount`` excludes cache reads and writes, which are priced
separately (at the input price when the catalog gives no cache price).

This module depends on nothing else in dashcam; records and stores call :func:`current`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

OVERRIDES_FILE = "prices.json"
ARN_PREFIX = r"^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:(inference-profile|foundation-model)/"
GEO_PREFIX = r"^(us|eu|apac|global|us-gov|jp|au|ca)\."
_ARN = re.compile(ARN_PREFIX)
_GEO = re.compile(GEO_PREFIX)
_FOREVER = 253402300799999  # 9999-12-31T23:59:59.999Z


class PricingError(ValueError):
    """A price file or price entry is malformed (the caller turns it into a ConfigError)."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens for one model from ``effective_ms`` on."""

    model: str
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    effective_ms: int = 0
    provider: str = "aws.bedrock"
    source: str = "catalog"


def model_keys(model_id: str) -> tuple[str, str]:
    """The two ids a model is priced by: without its ARN prefix, and also without its geo prefix."""
    exact = _ARN.sub("", model_id)
    return exact, _GEO.sub("", exact)


class PriceCatalog:
    """Prices by model, each model's entries ordered by the date they take effect."""

    def __init__(self, prices: list[Price], *, version: str = "") -> None:
        self.version = version
        self._by_model: dict[str, list[Price]] = {}
        for price in sorted(prices, key=lambda p: (p.model, p.effective_ms)):
            entries = self._by_model.setdefault(price.model, [])
            if entries and entries[-1].effective_ms == price.effective_ms:
                entries[-1] = price  # a later source (an override) replaces the same date's price
            else:
                entries.append(price)

    @classmethod
    def shipped(cls) -> "PriceCatalog":
        """The catalog that ships with dashcam."""
        data = orjson.loads(resources.files("dashcam.pricing").joinpath("catalog.json").read_bytes())
        return cls(_parse_entries(data["models"], source="catalog"), version=data["version"])

    @classmethod
    def load(cls, data_dir: str | Path | None) -> "PriceCatalog":
        """The shipped catalog with ``prices.json`` from ``data_dir`` laid over it."""
        catalog = cls.shipped()
        path = Path(data_dir) / OVERRIDES_FILE if data_dir else None
        if path is None or not path.exists():
            return catalog
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise PricingError(f"{path} is not valid JSON ({exc})") from None
        entries = data.get("models") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise PricingError(f"{path} must hold a list of prices (or {{\"models\": [...]}})")
        overrides = _parse_entries(entries, source=str(path))
        return cls(catalog.prices() + overrides, version=f"{catalog.version}+{path.name}")

    def prices(self) -> list[Price]:
        """Every entry, by model then date."""
        return [price for entries in self._by_model.values() for price in entries]

    def lookup(self, model_id: str | None, at_ms: int) -> Price | None:
        """The price of ``model_id`` in effect at ``at_ms``, or None when it is not priced."""
        if not model_id:
            return None
        for key in dict.fromkeys(model_keys(model_id)):
            in_effect = [p for p in self._by_model.get(key, ()) if p.effective_ms <= at_ms]
            if in_effect:
                return in_effect[-1]
        return None

    def cost(self, model_id: Any, at_ms: int, *, input_tokens: Any, output_tokens: Any,
             cache_read: Any = None, cache_write: Any = None, error_code: Any = None) -> float | None:
        """USD for one invocation by the rule in the module docstring."""
        if error_code is not None:
            return 0.0
        if input_tokens is None and output_tokens is None:
            return None
        price = self.lookup(model_id if isinstance(model_id, str) else None, at_ms)
        if price is None:
            return None
        read_price = price.input if price.cache_read is None else price.cache_read
        write_price = price.input if price.cache_write is None else price.cache_write
        return ((input_tokens or 0) * price.input + (output_tokens or 0) * price.output
                + (cache_read or 0) * read_price + (cache_write or 0) * write_price) / 1_000_000

    def ranges(self) -> list[tuple[str, int, int, float, float, float | None, float | None]]:
        """(model, from ms, until ms, input, output, cache read, cache write) for engines to join on."""
        rows = []
        for model, entries in self._by_model.items():
            for this, following in zip(entries, [*entries[1:], None]):
                until = following.effective_ms if following else _FOREVER
                rows.append((model, this.effective_ms, until, this.input, this.output,
                             this.cache_read, this.cache_write))
        return rows


def _parse_entries(entries: list[Any], *, source: str) -> list[Price]:
    prices = []
    for position, entry in enumerate(entries):
        where = f"{source}, entry {position}"
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str) or not entry["model"]:
            raise PricingError(f"{where}: each price needs a \"model\" name")
        numbers = {}
        for name in ("input", "output", "cacheRead", "cacheWrite"):
            value = entry.get(name)
            if value is None and name in ("input", "output"):
                raise PricingError(f"{where} ({entry['model']}): \"{name}\" (USD per 1M tokens) is missing")
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise PricingError(f"{where} ({entry['model']}): \"{name}\" must be a number >= 0")
            numbers[name] = value
        prices.append(Price(entry["model"], float(numbers["input"]), float(numbers["output"]),
                            numbers["cacheRead"], numbers["cacheWrite"], _effective_ms(entry.get("effective"), where),
                            entry.get("provider", "aws.bedrock"), source))
    return prices


def _effective_ms(value: Any, where: str) -> int:
    if value is None:
        return 0
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        raise PricingError(f"{where}: \"effective\" must be a date like 2026-03-01, got {value!r}") from None
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


_current = PriceCatalog.shipped()


def current() -> PriceCatalog:
    """The catalog ingestion prices records with."""
    return _current


def use(catalog: PriceCatalog) -> None:
    """Make ``catalog`` the one ingestion prices records with (the service does this on open)."""
    global _current
    _current = catalog
