"""The whole HTTP API fuzzed from its own OpenAPI document (schemathesis), against a real
manager on the simulator: no 5xx, and every response as the document says (status, content
type, headers, body), with the key and without it.

Each operation is fuzzed with valid requests, with invalid ones (which must be refused with a
4xx), both also on a connected tenant (so the routes get past 404), and without the key
(which must be 401 on every ``/api`` route). Bounded in the suite: :data:`SUITE_EXAMPLES`
examples per operation and run, derandomized so a failure is reproducible.
``WAMGR_FUZZ_EXAMPLES=N`` runs N per operation and run with fresh randomness
(``bench/fuzz_api.py`` does, for a long run).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from wamgr import ConnectionManager, TenantState

#: The tenant the "on a tenant" runs use; it is connected again before each operation.
TENANT = "t1"

#: What every response must pass.
CONFORMS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE


@dataclass(frozen=True)
class Run:
    """One pass over every operation: how requests are generated and sent."""

    name: str
    mode: GenerationMode
    #: Examples per operation in the suite.
    examples: int
    with_key: bool = True
    on_tenant: bool = False


#: About 20 operations × these runs: a few hundred requests in the suite.
RUNS = [
    Run("valid", POSITIVE, 5),
    Run("invalid", NEGATIVE, 5),
    Run(f"valid on {TENANT}", POSITIVE, 6, on_tenant=True),
    Run(f"invalid on {TENANT}", NEGATIVE, 8, on_tenant=True),
    Run("no key", POSITIVE, 2, with_key=False),
]


def _budget(run: Run) -> tuple[int, bool]:
    """Examples per operation of ``run`` and whether to derandomize them (in the suite)."""
    wanted = os.environ.get("WAMGR_FUZZ_EXAMPLES")
    if wanted:
        return int(wanted), False
    return run.examples, True


def _fuzz(
    operation: APIOperation, run: Run, path: dict[str, str], send: Callable[[Case], None]
) -> None:
    """Send generated requests of ``operation``; raise on the first failure (shrunk)."""
    examples, derandomize = _budget(run)
    strategy = operation.as_strategy(generation_mode=run.mode, path_parameters=path or None)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        send(data.draw(strategy))

    fuzz()


def _ready(mgr: ConnectionManager) -> None:
    """Make :data:`TENANT` connected again (an earlier operation may have stopped it)."""
    mgr.connect(TENANT)
    mgr.wait_for(TENANT, TenantState.CONNECTED, timeout=10)


@pytest.mark.slow
def test_fuzzing_the_api_finds_no_5xx_and_no_undeclared_response(
    mgr, serve_api, api_key: str
) -> None:
    api = serve_api(mgr)
    _ready(mgr)
    base_url = str(api.base_url)
    schema = schemathesis.openapi.from_dict(api.get("/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17, [op.label for op in operations]
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []

    def sender(run: Run) -> Callable[[Case], None]:
        key = {"x-api-key": api_key} if run.with_key else None
        checks = list(CONFORMS)
        if run.with_key:
            checks.append(ignored_auth)
        if run.mode is NEGATIVE:
            checks.append(negative_data_rejection)

        def send(case: Case) -> None:
            response = case.call(base_url=base_url, headers=key)
            statuses[run.name, response.status_code] += 1
            case.validate_response(response, checks=checks, headers=key)
            if not run.with_key and case.path.startswith("/api"):
                assert response.status_code == 401, (case.path, response.status_code)

        return send

    for run in RUNS:
        send = sender(run)
        for operation in operations:
            takes_tenant = "{tenant_id}" in operation.path
            if run.on_tenant and not takes_tenant:
                continue
            if run.on_tenant:
                _ready(mgr)
            try:
                _fuzz(operation, run, {"tenant_id": TENANT} if run.on_tenant else {}, send)
            except Unsatisfiable:
                assert run.mode is NEGATIVE, operation.label  # it takes nothing to get wrong
            except Exception as exc:  # collected, so one run reports every operation
                failures.append(f"{operation.label} ({run.name}): {_describe(exc)}")

    print("responses by run and status:", dict(sorted(statuses.items())))
    assert not failures, "\n\n".join(failures)
    # The fuzzing got past the doors: requests were served, not only refused.
    assert statuses["valid", 201] and statuses[f"valid on {TENANT}", 202], statuses


def _describe(exc: BaseException) -> str:
    """The failure and, for a group (hypothesis's FlakyFailure is one), each failure in it:
    a flaky one is reported with what failed the first time, not only that it was flaky."""
    text = f"{type(exc).__name__}: {exc}"
    for sub in getattr(exc, "exceptions", ()):
        text += "\n  - " + _describe(sub).replace("\n", "\n    ")
    return text
