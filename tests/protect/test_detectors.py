"""Each built-in detector on positive and negative samples, the Luhn check against an independent
computation, and how names, CloudWatch identifiers and custom patterns resolve."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashcam.errors import InputError
from dashcam.protect.detectors import (
    BY_NAME, DATA_IDENTIFIER_ARN, custom_detector, luhn_valid, phone_detector, resolve,
)


def found(name: str, text: str, context: str = "") -> list[str]:
    detector = BY_NAME[name]
    return [text[start:end] for start, end in detector.spans(text, context)]


# (detector, text, the sensitive values in it) — every positive must be found exactly.
POSITIVES = [
    ("email", "write to alice.smith+ops@example.co.uk today", ["alice.smith+ops@example.co.uk"]),
    ("email", "from:bob@mail.example.com,carol_x@ex-ample.org.", ["bob@mail.example.com", "carol_x@ex-ample.org"]),
    ("phone", "call (415) 555-2671 now", ["(415) 555-2671"]),
    ("phone", "London office +44 20 7946 0958, ask for Sam", ["+44 20 7946 0958"]),
    ("phone", "cell 650.253.0000", ["650.253.0000"]),
    ("credit-card", "card 4111 1111 1111 1111 exp 12/29", ["4111 1111 1111 1111"]),
    ("credit-card", "pan=5555555555554444;", ["5555555555554444"]),
    ("credit-card", "amex 3782-822463-10005 ok", ["3782-822463-10005"]),
    ("aws-access-key", "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", ["AKIAIOSFODNN7EXAMPLE"]),
    ("aws-access-key", "temporary ASIAY34FZKBOKMUTVV7A in use", ["ASIAY34FZKBOKMUTVV7A"]),
    ("aws-secret-key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]),
    ("aws-secret-key", '"SecretAccessKey": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"',
     ["je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"]),
    ("ip-address", "client 203.0.113.7 via 10.0.0.1.", ["203.0.113.7", "10.0.0.1"]),
    ("ip-address", "v6 2001:db8::8a2e:370:7334 and fe80::1%eth0 and ::1", ["2001:db8::8a2e:370:7334", "fe80::1%eth0", "::1"]),
    ("bearer-token", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
     ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"]),
    ("bearer-token", "bearer dk_ABCDEFGH.k2j3h4g5f6d7s8a9", ["dk_ABCDEFGH.k2j3h4g5f6d7s8a9"]),
]

# Lookalikes that must not be found.
NEGATIVES = [
    ("email", "user@localhost, @handle, a@b.c, name at example dot com"),
    ("phone", "on 2026-03-02, build 1772442000000, id 123-456-7890, version 1.2.3.4, 42 tokens"),
    ("phone", "ip 192.168.100.200 and 555-0132"),
    ("credit-card", "card 4111 1111 1111 1112 and 4111111111111112"),  # Luhn fails
    ("credit-card", "epoch ms 1772442000004 and order 0000000000000000 and 7777777777777777"),
    ("aws-access-key", "AKIAIOSFODNN7EXAMPL short, AKIAIOSFODNN7EXAMPLEX long, akiaiosfodnn7example lower"),
    ("aws-access-key", "AKIA0OSFODNN1EXAMPLE has 0 and 1 (not base32); AIDAJQABLZS4A3QDU576Q is a user id"),
    ("aws-secret-key", "sha1 wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY of the file"),  # no keyword near
    ("aws-secret-key", "secret key 0123456789012345678901234567890123456789"),  # no letters: a number
    ("ip-address", "version 1.2.3, 999.1.1.1, 01.2.3.4, 1.2.3.4.5, time 12:30:45, std::vector, a::b"),
    ("ip-address", "MAC 00:1A:2B:3C:4D:5E"),
    ("bearer-token", "the bearer of bad news; Bearer token expired; Bearer instrumentation-based"),
]


@pytest.mark.parametrize(("name", "text", "expected"), POSITIVES)
def test_each_detector_finds_what_it_is_for(name, text, expected):
    assert found(name, text) == expected


@pytest.mark.parametrize(("name", "text"), NEGATIVES)
def test_each_detector_leaves_lookalikes_alone(name, text):
    assert found(name, text) == []


def test_a_secret_key_is_found_by_its_json_key_as_context():
    value = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert found("aws-secret-key", value, context="aws_secret_access_key") == [value]
    assert found("aws-secret-key", value, context="checksum") == []


def test_national_phone_numbers_are_read_in_the_policys_region():
    uk = phone_detector("GB")
    text = "ring 020 7946 0958"
    assert [text[s:e] for s, e in uk.spans(text)] == ["020 7946 0958"]
    assert found("phone", text) == []  # not a valid US number


def _check_digit(body: str) -> str:
    """The Luhn check digit for ``body``, computed the textbook way (double every second digit
    from the right of the full number, sum the digits of the products)."""
    digits = [int(c) for c in body]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:  # these will be every second digit once the check digit is appended
            digit *= 2
            digit = digit // 10 + digit % 10
        total += digit
    return str((10 - total % 10) % 10)


@given(issuer=st.sampled_from("23456"), rest=st.text("0123456789", min_size=11, max_size=17))
def test_card_numbers_are_found_exactly_when_their_luhn_digit_is_right(issuer, rest):
    body = issuer + rest
    valid = body + _check_digit(body)
    wrong = body + str((int(_check_digit(body)) + 1) % 10)
    assert luhn_valid(valid) and not luhn_valid(wrong)
    if len(set(valid)) > 1:
        assert found("credit-card", f"paid with {valid}.") == [valid]
    assert found("credit-card", f"paid with {wrong}.") == []


def test_names_cloudwatch_identifiers_and_arns_resolve_to_the_same_detector():
    assert resolve("email") == ("email", None)
    assert resolve("EmailAddress") == ("email", None)
    assert resolve(DATA_IDENTIFIER_ARN + "CreditCardNumber") == ("credit-card", None)
    assert resolve(DATA_IDENTIFIER_ARN + "PhoneNumber-GB") == ("phone", "GB")
    assert resolve("AwsAccessKeyId") == ("aws-access-key", None)
    with pytest.raises(InputError, match="DriversLicense-US.*email"):
        resolve(DATA_IDENTIFIER_ARN + "DriversLicense-US")
    with pytest.raises(InputError, match="phone region"):
        resolve("PhoneNumber-ZZ")


def test_custom_patterns_are_checked_before_they_run():
    employee = custom_detector("EmployeeId", r"EMP-\d{6}")
    text = "EMP-123456 and EMP-12345"
    assert [text[s:e] for s, e in employee.spans(text)] == ["EMP-123456"]
    for name, regex, complaint in [("bad name!", "x", "name"), ("Ok", "(", "not a valid regular expression"),
                                   ("Empty", "a*", "matches empty text"), ("email", "x", "built-in"),
                                   ("Long", "x" * 201, "1-200 characters")]:
        with pytest.raises(InputError, match=complaint):
            custom_detector(name, regex)
