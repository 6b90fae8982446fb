"""Policies: validation, dashcam's JSON and CloudWatch's document, the policy file and its
patterns, and reloading when another process changes the file."""

from __future__ import annotations

import os

import orjson
import pytest

from dashcam.audit import AuditLog
from dashcam.errors import InputError, NotFoundError
from dashcam.protect.bodies import BodySwitches
from dashcam.protect.policy import POLICY_FILE, CustomPattern, Policy, PolicyBook

# CloudWatch's own example shape: an audit statement, a deidentify statement, a custom identifier.
AWS_DOCUMENT = {
    "Name": "data-protection-policy",
    "Description": "",
    "Version": "2021-06-01",
    "Statement": [
        {"Sid": "audit-policy",
         "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress", "EmployeeId"],
         "Operation": {"Audit": {"FindingsDestination": {}}}},
        {"Sid": "redact-policy",
         "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress",
                            "arn:aws:dataprotection::aws:data-identifier/PhoneNumber-GB", "EmployeeId"],
         "Operation": {"Deidentify": {"MaskConfig": {}}}},
    ],
    "Configuration": {"CustomDataIdentifier": [{"Name": "EmployeeId", "Regex": "EmployeeId-\\d{9}"}]},
}


def test_a_cloudwatch_document_becomes_a_policy_and_back():
    policy = Policy.from_cloudwatch(orjson.dumps(AWS_DOCUMENT).decode(), "/app")
    assert policy.detectors == ("email", "phone") and policy.phone_region == "GB"
    assert policy.custom == (CustomPattern("EmployeeId", "EmployeeId-\\d{9}"),)
    assert not policy.keep_original and policy.bodies == BodySwitches()
    document = orjson.loads(policy.to_cloudwatch())
    assert document["Version"] == "2021-06-01"
    redact = next(s for s in document["Statement"] if "Deidentify" in s["Operation"])
    assert set(redact["DataIdentifier"]) == set(AWS_DOCUMENT["Statement"][1]["DataIdentifier"])
    assert Policy.from_cloudwatch(policy.to_cloudwatch(), "/app") == policy


def test_dashcam_settings_travel_in_the_document_configuration():
    policy = Policy("/app", detectors=("credit-card",), keep_original=True, mask="[x]",
                    bodies=BodySwitches(text=True, image=False, embedding=False))
    back = Policy.from_cloudwatch(policy.to_cloudwatch(), "/app")
    assert back == policy
    assert orjson.loads(policy.to_cloudwatch())["Configuration"]["dashcam"]["imageDataDeliveryEnabled"] is False


@pytest.mark.parametrize(("document", "complaint"), [
    ("{not json", "not valid JSON"),
    ('{"Statement": []}', "Deidentify"),
    ('{"Statement": [{"DataIdentifier": ["DriversLicense-US"], "Operation": {"Deidentify": {"MaskConfig": {}}}}]}',
     "no detector 'DriversLicense-US'"),
    ('{"Statement": [{"DataIdentifier": "EmailAddress", "Operation": {"Deidentify": {}}}]}', "list of strings"),
    ('{"Statement": [{"DataIdentifier": ["EmailAddress"], "Operation": {"Deidentify": {}}}],'
     ' "Configuration": {"dashcam": {"keepEncryptedOriginal": "yes"}}}', "keepEncryptedOriginal must be a bool"),
])
def test_documents_dashcam_cannot_apply_are_refused_naming_why(document, complaint):
    with pytest.raises(InputError, match=complaint):
        Policy.from_cloudwatch(document, "/app")


def test_a_policy_that_does_nothing_or_names_unknown_things_is_refused():
    with pytest.raises(InputError, match="masks nothing"):
        Policy("/app")
    with pytest.raises(InputError, match="unknown detector"):
        Policy("/app", detectors=("ssn",))
    with pytest.raises(InputError, match="log group"):
        Policy("bad group!", detectors=("email",))
    with pytest.raises(InputError, match="unknown policy member"):
        Policy.from_dict({"logGroup": "/app", "detectors": ["email"], "keep": True})


def test_the_book_keeps_policies_in_a_private_file_and_audits_changes(tmp_path):
    book = PolicyBook(tmp_path)
    stored = book.put(Policy("/app", detectors=("email",)))
    assert stored.updated_ms > 0
    assert oct(os.stat(tmp_path / POLICY_FILE).st_mode & 0o777) == "0o600"
    assert PolicyBook(tmp_path).get("/app") == stored  # another instance reads the same file
    book.remove("/app")
    with pytest.raises(NotFoundError):
        book.remove("/app")
    assert [(e.action, e.target) for e in AuditLog(tmp_path).entries()] == [
        ("protection.put", "/app"), ("protection.delete", "/app")]


def test_a_group_gets_its_own_policy_else_the_most_specific_pattern(tmp_path):
    book = PolicyBook(tmp_path)
    for group, detector in (("*", "email"), ("/aws/*", "phone"), ("/aws/bedrock/*", "ip-address"),
                            ("/aws/bedrock/special", "credit-card")):
        book.put(Policy(group, detectors=(detector,)))
    assert book.for_group("/aws/bedrock/special").detectors == ("credit-card",)
    assert book.for_group("/aws/bedrock/other").detectors == ("ip-address",)
    assert book.for_group("/aws/lambda/x").detectors == ("phone",)
    assert book.for_group("/app").detectors == ("email",)


def test_a_change_made_by_another_process_is_seen_on_the_next_lookup(tmp_path):
    server_side, cli_side = PolicyBook(tmp_path), PolicyBook(tmp_path)
    assert server_side.empty() and server_side.for_group("/app") is None
    cli_side.put(Policy("/app", detectors=("email",)))
    assert server_side.for_group("/app").detectors == ("email",)
    cli_side.put(Policy("/app", detectors=("phone",), keep_original=True))
    assert server_side.for_group("/app").detectors == ("phone",) and server_side.for_group("/app").keep_original
    cli_side.remove("/app")
    assert server_side.for_group("/app") is None and server_side.empty()
