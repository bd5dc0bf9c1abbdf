"""A second person's approval on Kubernetes: a ContractApproval created, then the operator's verdict read.

What ``smart contract approve -n NS`` and the hub's approval page (``SMART_CONTRACT_APPROVAL_NAMESPACE``)
do on a cluster. Neither judges anything here: the object carries the SMART-ID signature, RBAC
decides whether the caller may create it at all, and the operator verifies the signature, the
author and the authority before it distributes, writing ``status.accepted`` and ``status.message``.
A revision named in full is handed to the operator as it is (the hub's approval page names the
one it read from the approvals record, so its service account may create and read
ContractApprovals and nothing else); a shorter one (``smart contract approve -n NS --revision R``,
8 characters at least) is first looked up among the SmartContract's awaiting revisions. The
revision must be the contract's pending one, or, for an ``emergency`` revision in force on one
Level 3's approval (``CountersignDue``/``CountersignOverdue``), that revision: a countersignature.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import Any, cast

import urllib3.exceptions

from smart.bus import at_once
from smart.contracts import approval
from smart.contracts.models import GROUP, VERSION, SmartContract

#: How long a caller waits for the operator's verdict before saying it has not come.
PATIENCE_S = 120.0
#: Each call to the API server: an unreachable one is said at once, never waited on for minutes.
REQUEST_TIMEOUT_S = 10.0
#: A revision named in full (SHA-256, ``approval.spec_revision``).
FULL_REVISION = re.compile(r"[0-9a-f]{64}")
_COUNTERSIGN = (approval.COUNTERSIGN_DUE, approval.COUNTERSIGN_OVERDUE)


def _api() -> Any:
    """The custom objects API: ``SMART_KUBE_SERVER`` (a test's emulator), in-cluster, or kubeconfig."""
    from kubernetes import client, config

    server = os.environ.get("SMART_KUBE_SERVER")
    if server:
        configuration = client.Configuration()
        configuration.host = server
        return client.CustomObjectsApi(client.ApiClient(configuration))
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as err:
            raise approval.FloorUnreachable(
                f"no Kubernetes API server is configured here ({str(err)[:200]})",
                where="(none)",
                advice="Point KUBECONFIG at the cluster (or run it in the cluster) and approve again",
            ) from err
    return client.CustomObjectsApi(client.ApiClient())


def _never_connected(err: Exception) -> bool:
    """Whether a request failed before any connection was made (refused, no route, connect timeout).

    urllib3 wraps the last try's failure in ``MaxRetryError`` once the client's retries are spent.
    """
    reason = err.reason if isinstance(err, urllib3.exceptions.MaxRetryError) else err
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError | ConnectionRefusedError)


def _unreachable(api: Any, err: Exception) -> approval.FloorUnreachable:
    """The API server did not answer before a ContractApproval was created: nothing was approved."""
    where = at_once.address(str(api.api_client.configuration.host), default_port=443)
    return approval.FloorUnreachable(
        f"the Kubernetes API server at {where} did not answer ({type(err).__name__})",
        where=where,
        advice="Check the cluster is up and the kubeconfig (or SMART_KUBE_SERVER) names it; approve again",
    )


def awaiting(contract: dict[str, Any]) -> list[str]:
    """The revisions of a SmartContract object that may take an approval now (pending, or to countersign)."""
    status = contract.get("status") or {}
    found = [str(status["pendingRevision"])] if status.get("pendingRevision") else []
    if status.get("approval") in _COUNTERSIGN:
        found.append(approval.spec_revision(SmartContract.model_validate(contract)))
    return found


def request(name: str, revision: str, token: str, namespace: str, *, patience_s: float = PATIENCE_S) -> str:
    """Create a ContractApproval for ``revision`` (8 characters at least) and wait for the verdict.

    Returns the operator's message when accepted; raises :class:`~smart.contracts.approval.ApprovalRefused`
    with its reason when refused, when the revision is not one awaiting approval, or when no verdict came.
    """
    from kubernetes import client

    api = _api()
    if FULL_REVISION.fullmatch(revision):
        # Named in full (the hub's approval page, from the approvals record): the operator alone judges
        # whether it awaits approval, so the caller needs no right to read SmartContracts.
        full = revision
    else:
        full = _pending_revision(api, name, revision, namespace)
    object_name = f"{name}-{full[:8]}-{hashlib.sha256(token.encode()).hexdigest()[:8]}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ContractApproval",
        "metadata": {"name": object_name, "namespace": namespace},
        "spec": {"contract": name, "revision": full, "credential": token},
    }
    try:
        api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "contractapprovals", body, _request_timeout=REQUEST_TIMEOUT_S
        )
    except client.ApiException as err:  # RBAC said no, or the same signature was handed in already
        raise approval.ApprovalRefused(
            f"contractapproval/{object_name} could not be created ({err.status} {err.reason})"
        ) from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        if _never_connected(err):  # nothing was sent: no ContractApproval exists
            raise _unreachable(api, err) from err
        raise approval.ApprovalRefused(  # sent, then no answer: it may have been created
            f"contractapproval/{object_name}: the API server stopped answering while it was created "
            f"({type(err).__name__}); kubectl -n {namespace} get contractapproval {object_name} "
            "says whether it was, and shows the operator's verdict if so"
        ) from err
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        try:
            found = cast(
                "dict[str, Any]",
                api.get_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    "contractapprovals",
                    object_name,
                    _request_timeout=REQUEST_TIMEOUT_S,
                ),
            )
        except (urllib3.exceptions.HTTPError, OSError) as err:  # created, then the API server went away
            raise approval.ApprovalRefused(
                f"contractapproval/{object_name} was created, then the API server stopped answering "
                f"({type(err).__name__}): it is kept, and the operator judges it whenever it runs "
                f"(kubectl -n {namespace} get contractapproval {object_name} shows the verdict)"
            ) from err
        status = found.get("status") or {}
        if status.get("accepted") == "True":
            return f"contractapproval/{object_name} accepted: {status.get('message')}"
        if status.get("accepted") == "False":
            raise approval.ApprovalRefused(str(status.get("message")))
        time.sleep(0.2)
    raise approval.ApprovalRefused(
        f"contractapproval/{object_name}: the operator has not judged it yet (it is kept: "
        f"kubectl -n {namespace} get contractapproval {object_name} shows the verdict when it comes)"
    )


def _pending_revision(api: Any, name: str, revision: str, namespace: str) -> str:
    """The awaiting revision of the SmartContract that ``revision`` (8 characters at least) begins."""
    from kubernetes import client

    try:
        contract = cast(
            "dict[str, Any]",
            api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "smartcontracts", name, _request_timeout=REQUEST_TIMEOUT_S
            ),
        )
    except client.ApiException as err:
        raise approval.ApprovalRefused(
            f"no SmartContract {name} in namespace {namespace} ({err.status})"
        ) from err
    except (urllib3.exceptions.HTTPError, OSError) as err:  # only read so far: nothing was created
        raise _unreachable(api, err) from err
    candidates = [r for r in awaiting(contract) if len(revision) >= 8 and r.startswith(revision)]
    if not candidates:
        pending = str((contract.get("status") or {}).get("pendingRevision") or "")
        raise approval.ApprovalRefused(
            f"revision {revision[:12] or '(none)'} is not the pending one (pending: {pending[:12] or 'none'})"
        )
    return candidates[0]
