"""What sensitive data looks like: the built-in detectors as one table, and custom patterns.

A :class:`Detector` is a regular expression that finds candidates and, where a pattern alone
would be wrong too often, a validator that confirms each one: the Luhn checksum for card
numbers, the IP address parser for addresses, libphonenumber's numbering plans for phone
numbers, a nearby keyword for AWS secret keys (as CloudWatch Logs requires one). Only the span
a detector names is masked (for a bearer token, the token and not the word ``Bearer``).

Each built-in has dashcam's name (``credit-card``, used by the CLI) and the CloudWatch Logs data
identifier it stands for (``CreditCardNumber``); the two dashcam adds that CloudWatch lacks are
``AwsAccessKeyId`` and ``BearerToken``. :func:`resolve` accepts either spelling, and the ARN form
``arn:aws:dataprotection::aws:data-identifier/EmailAddress``; ``PhoneNumber-GB`` selects the
region that phone numbers written without a country code are read in.

Detectors scan text. Inside JSON they scan string values (with the key as context, so a secret
under ``"aws_secret_access_key"`` is found) and, for the detectors marked ``scans_numbers``,
integers too — a card number sent as a JSON number is still a card number.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

from dashcam.errors import InputError

DATA_IDENTIFIER_ARN = "arn:aws:dataprotection::aws:data-identifier/"
DEFAULT_PHONE_REGION = "US"
CUSTOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_CUSTOM_PATTERNS = 10     # CloudWatch's limit per policy
MAX_CUSTOM_REGEX_CHARS = 200  # likewise

Validator = Callable[[re.Match[str], str], bool]
"""Confirms a candidate: the match, and the context before the scanned text (a JSON key)."""


@dataclass(frozen=True)
class Detector:
    """One kind of sensitive data: how to find it, and which part of a match to mask."""

    name: str
    identifier: str
    pattern: re.Pattern[str]
    description: str
    validate: Validator | None = None
    span_group: int = 0
    scans_numbers: bool = False
    hint: re.Pattern[str] | None = None

    def may_find(self, text: str) -> bool:
        """False only when ``text`` cannot hold a finding: the ``hint`` is a loose pattern that
        every finding's surroundings match even inside JSON-escaped text, so one cheap scan of a
        whole message rules a detector out for all of its values."""
        return self.hint is None or self.hint.search(text) is not None

    def spans(self, text: str, context: str = "") -> list[tuple[int, int]]:
        """The (start, end) of every confirmed finding in ``text``."""
        found = []
        for match in self.pattern.finditer(text):
            if self.validate is None or self.validate(match, context):
                found.append(match.span(self.span_group))
        return found


# ---------------------------------------------------------------------- validators


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn (mod 10) checksum of payment card numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str], _: str) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits)


def _ipv4(match: re.Match[str], _: str) -> bool:
    try:
        ipaddress.IPv4Address(match.group(0))
    except ValueError:  # octets over 255, or leading zeros
        return False
    return True


def _ipv6(match: re.Match[str], _: str) -> bool:
    text = match.group(0).split("%", 1)[0]
    # "a::b" is an address too, but in text far more often a scope (C++, Rust): without a digit,
    # take only forms with four or more groups.
    if not re.search(r"\d", text) and len([g for g in text.split(":") if g]) < 4:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_SECRET_KEYWORDS = ("awssecretaccesskey", "secretaccesskey", "secretkey", "credentials", "setawscredential")


def _aws_secret(match: re.Match[str], context: str) -> bool:
    # A 40-character base64 run is too common (hashes, encoded data) to be a secret on its own:
    # like CloudWatch, require a keyword within ~30 characters before it.
    before = (context + " " + match.string[:match.start()])[-48:]
    squeezed = re.sub(r"[^a-z]", "", before.lower())
    value = match.group(0)
    return any(k in squeezed for k in _SECRET_KEYWORDS) and value.lower() != value and value.upper() != value


def _bearer(match: re.Match[str], _: str) -> bool:
    token = match.group(1)
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


@functools.lru_cache(maxsize=65_536)
def _valid_phone(candidate: str, region: str) -> bool:
    # Cached: the same digit runs (account ids, dates) recur in every record, and parsing is slow.
    if sum(c.isdigit() for c in candidate) < 7:
        return False
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def _phone_validator(region: str) -> Validator:
    return lambda match, _: _valid_phone(match.group(0), region)


# ---------------------------------------------------------------------- the table

# Seven digits with at most three separators between neighbours: every valid number has them.
_PHONE_HINT = re.compile(r"\d(?:[ .()+\-]{0,3}\d){6}")
_PHONE_PATTERN = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?![\w]|[.-]\d)"
)

# Patterns start with the character class of their first character and check what precedes it
# with a two-character lookbehind (``X(?<!P.)``): Python's engine then skips ahead to candidate
# characters instead of trying a lookbehind at every position (5-10x faster on log text).
BUILTIN: tuple[Detector, ...] = (
    Detector(
        "aws-secret-key", "AwsSecretKey",
        re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
        "AWS secret access keys (40 characters of base64 after a keyword such as aws_secret_access_key)",
        _aws_secret, hint=re.compile(r"(?i)sec|cred"),
    ),
    Detector(
        "aws-access-key", "AwsAccessKeyId",
        re.compile(r"A(?<![A-Za-z0-9].)(?:KIA|SIA|BIA|CCA)[A-Z2-7]{16}(?![A-Za-z0-9])"),
        "AWS access key ids (AKIA..., ASIA... and 16 base32 characters)",
        hint=re.compile(r"A(?:KIA|SIA|BIA|CCA)"),
    ),
    Detector(
        "bearer-token", "BearerToken",
        re.compile(r"(?i:\bbearer)\s+([A-Za-z0-9\-._~+/]{16,}=*)"),
        "bearer tokens after the word Bearer (at least 16 characters, letters and digits)",
        _bearer, span_group=1, hint=re.compile(r"(?i)bearer"),
    ),
    Detector(
        "email", "EmailAddress",
        re.compile(r"(?<![\w.+%-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"),
        "email addresses", hint=re.compile("@"),
    ),
    Detector(
        "credit-card", "CreditCardNumber",
        # Groups of 4 (or Amex's 4-6-5) with one kind of separator.
        re.compile(r"[2-6](?<![\w-].)(?:\d{12,18}|\d{3}(?: \d{4}){2} \d{1,7}|\d{3}(?:-\d{4}){2}-\d{1,7}"
                   r"|(?<=3)\d{3} \d{6} \d{5}|(?<=3)\d{3}-\d{6}-\d{5})(?![\w]|[ -]\d)"),
        "payment card numbers (13-19 digits, issuer 2-6, Luhn checksum)",
        _card, scans_numbers=True, hint=re.compile(r"[2-6]\d{3}[ -]?\d{4}"),
    ),
    Detector(
        "ip-address", "IpAddress",
        re.compile(r"\d(?<![\w.].)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w]|\.\d)"
                   r"|[0-9A-Fa-f:](?<![\w:.].)(?:(?<=:)|[0-9A-Fa-f]{0,3}:)(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4}"
                   r"(?:%[\w.]+)?(?![\w:])"),
        "IPv4 and IPv6 addresses",
        lambda match, context: _ipv4(match, context) if "." in match.group(0).split("%")[0] else _ipv6(match, context),
        hint=re.compile(r"\d\.\d|[0-9A-Fa-f:]:"),
    ),
    Detector(
        "phone", "PhoneNumber",
        _PHONE_PATTERN,
        "phone numbers: international (+CC ...) anywhere, national ones in the policy's phone region",
        _phone_validator(DEFAULT_PHONE_REGION), hint=_PHONE_HINT,
    ),
)

BY_NAME: dict[str, Detector] = {d.name: d for d in BUILTIN}


BY_IDENTIFIER: dict[str, Detector] = {d.identifier: d for d in BUILTIN}


@functools.lru_cache(maxsize=64)
def phone_detector(region: str) -> Detector:
    """The phone detector reading national numbers as numbers of ``region`` (ISO 3166 alpha-2)."""
    base = BY_NAME["phone"]
    return Detector(base.name, base.identifier, base.pattern, base.description, _phone_validator(region),
                    hint=base.hint)


def check_region(region: str) -> str:
    """``region`` upper-cased if libphonenumber knows its numbering plan; InputError otherwise."""
    upper = region.upper()
    if upper not in phonenumbers.SUPPORTED_REGIONS:
        raise InputError(f"phone region {region!r} is not a two-letter country code libphonenumber knows (e.g. US, GB)")
    return upper


def resolve(identifier: str) -> tuple[str, str | None]:
    """(dashcam detector name, phone region or None) of a name, a CloudWatch identifier or its ARN;
    InputError naming the detectors dashcam has when it is none of them."""
    name = identifier.removeprefix(DATA_IDENTIFIER_ARN)
    if name in BY_NAME:
        return name, None
    if name in BY_IDENTIFIER:
        return BY_IDENTIFIER[name].name, None
    base, _, region = name.rpartition("-")
    if base == "PhoneNumber" and region:
        return "phone", check_region(region)
    known = ", ".join(f"{d.name} ({d.identifier})" for d in BUILTIN)
    raise InputError(f"dashcam has no detector {identifier!r}; built-in detectors: {known}")


def custom_detector(name: str, regex: str) -> Detector:
    """A detector from a custom pattern (CloudWatch's custom data identifier); InputError when the
    name or the regular expression is unusable."""
    if not CUSTOM_NAME.fullmatch(name or ""):
        raise InputError(f"custom pattern name {name!r} must be 1-128 letters, digits, _ or -")
    if name in BY_NAME or name in BY_IDENTIFIER:
        raise InputError(f"custom pattern name {name!r} is the name of a built-in detector")
    if not regex or len(regex) > MAX_CUSTOM_REGEX_CHARS:
        raise InputError(f"custom pattern {name!r}: the regular expression must be "
                         f"1-{MAX_CUSTOM_REGEX_CHARS} characters")
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise InputError(f"custom pattern {name!r} is not a valid regular expression: {exc}") from None
    if pattern.fullmatch(""):
        raise InputError(f"custom pattern {name!r} matches empty text; it would mask between every character")
    return Detector(name, name, pattern, f"custom pattern {regex}")
