"""The run lease as a resource, so runs launched by the schedule or the UI take it as the CLI's do."""

from __future__ import annotations

import contextlib

import dagster as dg
from pydantic import PrivateAttr

from costagent_assets.resources.s3_ledger import open_run_lease
from costagent_assets.run_lease import LeaseHeld, hold


class RunLeaseResource(dg.ConfigurableResource):
    """Holds the installation's run lease (``costagent_assets.run_lease``) while a run executes.

    Taken when the run initialises its resources and given back when it ends; inside a `costagent run`
    (which already holds it) it is re-entrant. A run that finds another run holding it fails at once,
    with that run's name, before anything is written or sent.
    """

    warehouse_root: str
    s3_endpoint_url: str = ""
    s3_region: str = ""
    wait_seconds: float = 0.0
    _stack: contextlib.ExitStack | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        lease = open_run_lease(self.warehouse_root, self.s3_endpoint_url, self.s3_region)
        run_id = context.run_id or "?"
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(hold(lease, f"Dagster run {run_id}", wait_seconds=self.wait_seconds))
        except LeaseHeld as err:
            raise dg.Failure(str(err)) from None
        self._stack = stack

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
