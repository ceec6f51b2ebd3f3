"""The run lease as a resource: what runs launched by the schedule or the UI take when they start."""

from __future__ import annotations

import dagster as dg
import pytest

from costagent_assets.resources.run_lease import RunLeaseResource
from costagent_assets.resources.s3_ledger import open_run_lease


def test_a_run_launched_by_dagster_is_refused_while_another_holds_the_lease(tmp_path):
    root = tmp_path / "warehouse"
    resource = RunLeaseResource(warehouse_root=str(root))
    held = open_run_lease(str(root), "", "")
    assert held.try_acquire("costagent weekly_report 2026-11") is not None
    try:
        with pytest.raises(dg.Failure, match=r"another run holds .*: costagent weekly_report 2026-11 \(pid"):
            resource.setup_for_execution(dg.build_init_resource_context())
    finally:
        held.release(None)
    resource.setup_for_execution(dg.build_init_resource_context())  # free now: taken, then given back
    assert open_run_lease(str(root), "", "").try_acquire("next") is None
    resource.teardown_after_execution(dg.build_init_resource_context())
    assert open_run_lease(str(root), "", "").try_acquire("next") is not None
