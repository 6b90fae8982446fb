"""The price catalog: lookups through ARNs and geo prefixes, effective dates, overrides, the cost rule."""

from __future__ import annotations

import pytest

from dashcam import pricing
from dashcam.pricing import Price, PriceCatalog, PricingError, model_keys

MARCH = 1772409600000  # 2026-03-02T00:00:00Z


def test_the_shipped_catalog_is_dated_and_prices_the_common_models():
    catalog = PriceCatalog.shipped()
    assert catalog.version == "2026-11-26"
    for model in ("amazon.nova-lite-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0", "gpt-4o-mini",
                  "claude-sonnet-4-20250514", "meta.llama3-1-70b-instruct-v1:0", "amazon.titan-embed-text-v2:0"):
        assert catalog.lookup(model, MARCH) is not None, model


def test_inference_profile_arns_and_geo_prefixes_find_the_model():
    catalog = PriceCatalog.shipped()
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"
    assert model_keys(arn) == ("us.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0")
    assert catalog.lookup(arn, MARCH).input == 3.00
    # A profile listed itself wins over its base model (newer geo profiles cost 10% more).
    assert catalog.lookup("us.anthropic.claude-sonnet-4-6", MARCH).input == 3.30
    assert catalog.lookup("global.anthropic.claude-sonnet-4-6", MARCH).input == 3.00
    assert catalog.lookup("arn:aws:bedrock:us-east-1:1:application-inference-profile/abc123", MARCH) is None


def test_effective_dates_choose_the_price_in_force():
    catalog = PriceCatalog([Price("m", 1.0, 2.0, effective_ms=0), Price("m", 5.0, 6.0, effective_ms=MARCH)])
    assert catalog.lookup("m", MARCH - 1).input == 1.0
    assert catalog.lookup("m", MARCH).input == 5.0
    assert catalog.ranges() == [("m", 0, MARCH, 1.0, 2.0, None, None),
                                ("m", MARCH, 253402300799999, 5.0, 6.0, None, None)]


def test_the_cost_rule():
    catalog = PriceCatalog([Price("m", 2.0, 10.0, cache_read=0.2, cache_write=2.5), Price("n", 1.0, 1.0)])
    assert catalog.cost("m", MARCH, input_tokens=1000, output_tokens=100, cache_read=5000,
                        cache_write=400) == pytest.approx((1000 * 2 + 100 * 10 + 5000 * 0.2 + 400 * 2.5) / 1e6)
    assert catalog.cost("n", MARCH, input_tokens=10, output_tokens=0, cache_read=10) == pytest.approx(20 / 1e6)
    assert catalog.cost("m", MARCH, input_tokens=5, output_tokens=5, error_code="ThrottlingException") == 0.0
    assert catalog.cost("m", MARCH, input_tokens=None, output_tokens=None) is None  # unknown, not $0
    assert catalog.cost("unpriced-model", MARCH, input_tokens=10, output_tokens=10) is None  # never a silent $0


def test_overrides_in_the_data_directory_lay_over_the_catalog(tmp_path):
    (tmp_path / "prices.json").write_text(
        '{"models": [{"model": "amazon.nova-lite-v1:0", "input": 1, "output": 2, "effective": "2026-03-01"},'
        ' {"model": "my-finetune", "input": 0.5, "output": 0.5}]}')
    catalog = PriceCatalog.load(tmp_path)
    assert catalog.lookup("amazon.nova-lite-v1:0", MARCH).input == 1
    assert catalog.lookup("amazon.nova-lite-v1:0", MARCH - 86_400_000 * 2).input == 0.06  # before the override
    assert catalog.lookup("my-finetune", MARCH).source.endswith("prices.json")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"models": {"a": 1}}', "list of prices"),
    ('[{"input": 1, "output": 1}]', r'needs a "model"'),
    ('[{"model": "m", "output": 1}]', r'"input" \(USD per 1M tokens\) is missing'),
    ('[{"model": "m", "input": -1, "output": 1}]', "must be a number >= 0"),
    ('[{"model": "m", "input": 1, "output": 1, "effective": "March"}]', "must be a date"),
])
def test_bad_override_files_say_what_is_wrong(tmp_path, content, message):
    (tmp_path / "prices.json").write_text(content)
    with pytest.raises(PricingError, match=message):
        PriceCatalog.load(tmp_path)


def test_ingestion_prices_with_the_catalog_in_use(tmp_path):
    from dashcam.records import normalize

    previous = pricing.current()
    try:
        pricing.use(PriceCatalog([Price("m", 1_000_000.0, 0.0)]))
        record = {"timestamp": "2026-03-02T00:00:00Z", "modelId": "m", "input": {"inputTokenCount": 3}}
        assert normalize(record, source="api")["costUsd"] == 3.0
    finally:
        pricing.use(previous)


def _cli(*args: str):
    from click.testing import CliRunner

    from dashcam.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


SAMPLES = __import__("pathlib").Path(__file__).resolve().parent / "fixtures" / "bedrock-invocation-logs.jsonl"


def test_cost_by_model_and_reprice_after_a_price_change(tmp_path):
    import orjson

    data = str(tmp_path / "data")
    assert _cli("--data", data, "import", str(SAMPLES)).exit_code == 0
    rows = orjson.loads(_cli("--data", data, "cost", "--format", "json").stdout)
    by_model = {row["model"]: row for row in rows}
    assert by_model["amazon.nova-lite-v1:0"]["costUsd"] == pytest.approx((8 * 0.06 + 21 * 0.24) / 1e6)
    assert by_model["meta.llama3-1-8b-instruct-v1:0"]["costUsd"] == 0  # it failed: nothing billed
    assert rows[0]["model"].endswith("claude-sonnet-4-20250514-v1:0")  # most expensive first

    (tmp_path / "data" / "prices.json").write_text('[{"model": "amazon.nova-lite-v1:0", "input": 1000, "output": 0}]')
    repriced = _cli("--data", data, "reprice")
    assert repriced.exit_code == 0 and "repriced 6 events" in repriced.stderr
    rows = orjson.loads(_cli("--data", data, "cost", "--format", "json").stdout)
    assert {r["model"]: r["costUsd"] for r in rows}["amazon.nova-lite-v1:0"] == pytest.approx(8 * 1000 / 1e6)


def test_unpriced_models_are_listed_and_never_count_as_zero(tmp_path):
    import orjson

    data = tmp_path / "data"
    record = {"schemaType": "ModelInvocationLog", "timestamp": "2026-03-02T10:00:00Z", "modelId": "acme.secret-model",
              "operation": "Converse", "input": {"inputTokenCount": 5}, "output": {"outputTokenCount": 5}}
    path = tmp_path / "r.jsonl"
    path.write_bytes(orjson.dumps(record) + b"\n")
    assert _cli("--data", str(data), "import", str(path)).exit_code == 0
    listed = orjson.loads(_cli("--data", str(data), "prices", "--unpriced", "--format", "json").stdout)
    assert listed == [{"modelId": "acme.secret-model", "calls": 1}]
    cost = _cli("--data", str(data), "cost", "--format", "json")
    assert orjson.loads(cost.stdout) == [{"model": "acme.secret-model", "costUsd": None, "calls": 1,
                                          "inputTokens": 5, "outputTokens": 5, "unpricedCalls": 1}]
    assert "1 calls have no price" in cost.stderr


def test_a_records_own_cost_is_kept_on_reprice(tmp_path):
    from dashcam.service import Dashcam

    with Dashcam.open(tmp_path) as dashcam:
        dashcam.store.write_records("g", "s", [
            {"timestamp": "2026-03-02T10:00:00Z", "modelId": "amazon.nova-lite-v1:0", "costUsd": 1.5,
             "input": {"inputTokenCount": 1}},
            {"timestamp": "2026-03-02T10:00:01Z", "modelId": "amazon.nova-lite-v1:0", "input": {"inputTokenCount": 1}},
        ], source="api")
        assert dashcam.store.reprice() == 1
        costs = [r["costUsd"] for r in dashcam.query("fields costUsd | sort @timestamp asc").rows]
        assert costs == [1.5, pytest.approx(0.06 / 1e6)]
