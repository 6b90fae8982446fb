"""The OTLP receiver's own timestamp reader gives what :func:`dashcam.records.timestamp_ms` gives."""

from __future__ import annotations

import random

import pytest

from dashcam.errors import InputError
from dashcam.records import timestamp_ms as general_timestamp_ms
from dashcam.sources.otlp import rfc3339_ms, timestamp_ms


def test_every_timestamp_the_mapping_writes_reads_back_as_the_general_reader_reads_it():
    draw = random.Random(20260302)
    nanos = [0, 999_999, 1_000_000, 2**64 - 1] + [draw.randrange(0, 2**64) for _ in range(20_000)]
    for nano in nanos:
        text = rfc3339_ms(nano)
        assert timestamp_ms(text) == general_timestamp_ms(text) == nano // 1_000_000, text


@pytest.mark.parametrize("text", ["2026-03-02T14:00:00Z", "2026-03-02T14:00:00.1234Z", "2026-03-02T14:00:00.123+02:00",
                                  "2026-03-02 14:00:00.123", "1772460000", "1772460000123.5"])
def test_other_forms_go_to_the_general_reader(text):
    assert timestamp_ms(text) == general_timestamp_ms(text)


def test_text_that_is_no_timestamp_is_refused_the_same_way():
    with pytest.raises(InputError) as general:
        general_timestamp_ms("yesterday")
    with pytest.raises(InputError) as own:
        timestamp_ms("yesterday")
    assert str(own.value) == str(general.value)
