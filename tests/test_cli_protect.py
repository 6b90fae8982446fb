"""``dashcam protect``, ``dashcam unmask``: policies from the command line, applied by a later
import, and originals read back by @ptr; the unmask key rotated only while no server runs."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from dashcam.cli import main
from dashcam.protect.vault import KEY_FILE

RECORD = {"timestamp": "2026-03-02T10:00:00Z", "operation": "Converse", "modelId": "m",
          "requestMetadata": {"userId": "pat@example.com"},
          "input": {"inputTokenCount": 5, "inputBodyJson": {"messages": [{"role": "user", "content": [
              {"text": "call me on +44 20 7946 0958, ref EMP-004217"}]}]}}}


def run(data, *args: str):
    result = CliRunner().invoke(main, ["--data", str(data), *args])
    return result


def test_a_policy_set_on_the_command_line_masks_the_next_import_and_unmask_reads_it_back(tmp_path):
    data = tmp_path / "data"
    assert run(data, "protect", "set", "--log-group", "/app", "--detectors", "email,phone", "--phone-region", "gb",
               "--custom", r"Employee=EMP-\d{6}", "--keep-original", "--no-image").exit_code == 0
    shown = orjson.loads(run(data, "protect", "show", "--format", "json").output)
    assert [(p["logGroup"], p["detectors"], p["phoneRegion"], p["keepOriginal"], p["bodies"]["image"])
            for p in shown] == [("/app", ["email", "phone"], "GB", True, False)]
    document = orjson.loads(run(data, "protect", "show", "--log-group", "/app", "--format", "cloudwatch").output)
    assert document["Configuration"]["CustomDataIdentifier"] == [{"Name": "Employee", "Regex": r"EMP-\d{6}"}]

    logs = tmp_path / "logs.jsonl"
    logs.write_bytes(orjson.dumps(RECORD) + b"\n")
    assert run(data, "import", "--log-group", "/app", str(logs)).exit_code == 0
    rows = orjson.loads(run(data, "query", "--format", "json", "fields @ptr, @message, userId").output)
    message = orjson.loads(rows[0]["@message"])
    assert message["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"] == "call me on ****, ref ****"
    assert rows[0]["userId"] == "****"

    unmasked = run(data, "unmask", rows[0]["@ptr"], "/app:12345")
    assert unmasked.exit_code == 0
    first, second = (orjson.loads(line) for line in unmasked.output.splitlines())
    assert orjson.loads(first["message"]) == RECORD and first["found"]
    assert second == {"ptr": "/app:12345", "found": False, "message": None}
    assert run(data, "unmask", "not-a-pointer").exit_code == 2

    table = run(data, "protect", "show").output
    assert "/app" in table and "email,phone,Employee" in table and "image" in table
    assert run(data, "protect", "remove", "--log-group", "/app").exit_code == 0
    assert run(data, "protect", "remove", "--log-group", "/app").exit_code == 1
    assert orjson.loads(run(data, "protect", "show", "--format", "json").output) == []


def test_bad_settings_are_refused_with_the_reason(tmp_path):
    refused = run(tmp_path, "protect", "set", "--log-group", "/app", "--detectors", "ssn")
    assert refused.exit_code == 2 and "unknown detector 'ssn'" in refused.output
    refused = run(tmp_path, "protect", "set", "--log-group", "/app")
    assert refused.exit_code == 2 and "masks nothing" in refused.output
    refused = run(tmp_path, "protect", "set", "--log-group", "/app", "--custom", "no-equals-sign")
    assert refused.exit_code == 2 and "NAME=REGEX" in refused.output
    listing = run(tmp_path, "protect", "detectors").output
    assert "credit-card" in listing and "CreditCardNumber" in listing


def test_the_unmask_key_rotates_only_while_no_server_runs(tmp_path, server):
    data = tmp_path / "data"
    run(data, "protect", "set", "--log-group", "/app", "--detectors", "email", "--keep-original")
    logs = tmp_path / "logs.jsonl"
    logs.write_bytes(orjson.dumps(RECORD) + b"\n")
    run(data, "import", "--log-group", "/app", str(logs))
    ptr = orjson.loads(run(data, "query", "--format", "json", "fields @ptr").output)[0]["@ptr"]
    old_key = (data / KEY_FILE).read_bytes()
    (data / "server.json").write_bytes(orjson.dumps({"url": server.url, "pid": 1, "token": "t"}))
    refused = run(data, "protect", "rotate-key")
    assert refused.exit_code == 2 and "stop it" in refused.output
    (data / "server.json").unlink()
    rotated = run(data, "protect", "rotate-key")
    assert rotated.exit_code == 0 and "re-encrypted 1 originals" in rotated.output
    assert (data / KEY_FILE).read_bytes() != old_key
    assert orjson.loads(orjson.loads(run(data, "unmask", ptr).output)["message"]) == RECORD
    actions = [e["action"] for e in orjson.loads(run(data, "audit", "--format", "json").output)]
    assert actions == ["protection.put", "unmask-key.rotate", "unmask"]
