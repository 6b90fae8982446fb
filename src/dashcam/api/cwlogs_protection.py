"""CloudWatch Logs API: data protection policies (Put/Get/DeleteDataProtectionPolicy).

The policy document is CloudWatch's own JSON (``DataIdentifier`` ARNs, ``Deidentify`` and
``Audit`` statements, ``CustomDataIdentifier``); dashcam's extras ride in
``Configuration.dashcam`` (see :mod:`dashcam.protect.policy`). Putting and deleting a policy are
admin actions (:data:`NEEDS`) and are audited by the policy book. As in CloudWatch, a policy
applies to events ingested after it is set; earlier events stay as they were stored.
"""

from __future__ import annotations

from typing import Any

from dashcam.api.awsjson import AwsError, Member
from dashcam.api.cwlogs_groups import IDENTIFIER_PATTERN, Context, Handler, group_from_identifier, group_retention
from dashcam.errors import InputError, NotFoundError
from dashcam.protect.policy import Policy

# What each operation needs of the caller's role (merged into cwlogs' table).
NEEDS = {"PutDataProtectionPolicy": "admin", "DeleteDataProtectionPolicy": "admin"}

_IDENTIFIER = Member("string", True, 1, 2048, IDENTIFIER_PATTERN)


def _policies(ctx: Context) -> Any:
    protection = getattr(ctx.dashcam, "protection", None)
    if protection is None:
        raise AwsError("InvalidOperationException", "data protection is not enabled on this server")
    return protection.policies


def _existing_group(ctx: Context, params: dict[str, Any]) -> str:
    group = group_from_identifier(params["logGroupIdentifier"])
    group_retention(ctx, group)  # ResourceNotFoundException when the group does not exist
    return group


PUT_DATA_PROTECTION_POLICY = {
    "logGroupIdentifier": _IDENTIFIER,
    "policyDocument": Member("string", True),
}


def put_data_protection_policy(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Set the group's policy (replacing any); InvalidParameterException for a document dashcam
    cannot apply, naming what is wrong."""
    group = _existing_group(ctx, params)
    try:
        policy = Policy.from_cloudwatch(params["policyDocument"], group)
    except InputError as exc:
        raise AwsError("InvalidParameterException", str(exc)) from None
    stored = _policies(ctx).put(policy)
    return {"logGroupIdentifier": params["logGroupIdentifier"], "policyDocument": stored.to_cloudwatch(),
            "lastUpdatedTime": stored.updated_ms}


GET_DATA_PROTECTION_POLICY = {"logGroupIdentifier": _IDENTIFIER}


def get_data_protection_policy(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """The group's policy document; only ``logGroupIdentifier`` when it has none."""
    group = _existing_group(ctx, params)
    try:
        policy = _policies(ctx).get(group)
    except NotFoundError:
        return {"logGroupIdentifier": params["logGroupIdentifier"]}
    return {"logGroupIdentifier": params["logGroupIdentifier"], "policyDocument": policy.to_cloudwatch(),
            "lastUpdatedTime": policy.updated_ms}


DELETE_DATA_PROTECTION_POLICY = {"logGroupIdentifier": _IDENTIFIER}


def delete_data_protection_policy(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Remove the group's policy; events already stored stay masked."""
    group = _existing_group(ctx, params)
    try:
        _policies(ctx).remove(group)
    except NotFoundError:
        raise AwsError("ResourceNotFoundException", "The specified log group has no data protection policy.") from None
    return {}


OPERATIONS: dict[str, tuple[dict[str, Member], Handler]] = {
    "PutDataProtectionPolicy": (PUT_DATA_PROTECTION_POLICY, put_data_protection_policy),
    "GetDataProtectionPolicy": (GET_DATA_PROTECTION_POLICY, get_data_protection_policy),
    "DeleteDataProtectionPolicy": (DELETE_DATA_PROTECTION_POLICY, delete_data_protection_policy),
}
