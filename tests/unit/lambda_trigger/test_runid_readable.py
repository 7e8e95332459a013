from __future__ import annotations

import uuid

import pytest

from lambda_trigger.runid import (
    READABLE_RUN_ID_MAX,
    is_readable_run_id,
    is_run_id,
    new_run_id,
)


def test_the_api_keeps_its_own_format() -> None:
    run_id = new_run_id()
    assert is_run_id(run_id) and is_readable_run_id(run_id)
    assert not is_run_id(f"airflow-{uuid.uuid4()}")
    assert not is_run_id(run_id + "\n")


@pytest.mark.parametrize(
    "value",
    [f"airflow-{uuid.uuid4()}", str(uuid.uuid4()), "a", "A.b_c~d-e", "x" * READABLE_RUN_ID_MAX],
)
def test_ids_any_writer_may_use_are_readable(value: str) -> None:
    assert is_readable_run_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        f"airflow-{uuid.uuid4()}\n",
        "\nairflow",
        "a b",
        "a/b",
        "../etc",
        ".",
        "..",
        "a%2Fb",
        "a:b",
        "(x)",
        "a,b",
        "é",
        "x" * (READABLE_RUN_ID_MAX + 1),
    ],
)
def test_anything_else_is_not(value: str) -> None:
    assert not is_readable_run_id(value)
