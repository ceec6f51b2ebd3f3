"""moto's server on loopback, with Cost Explorer throttling on command.

moto answers GetCostAndUsage from a queue of results set through its documented
``/moto-api/static/ce/cost-and-usage-results`` endpoint (one queued result per distinct request body,
in order). It never throttles, so a thin WSGI layer in front answers the next N Cost Explorer calls
with the ``LimitExceededException`` that AWS sends, before they reach moto.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import httpx
import polars as pl
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

CE_TARGET = "AWSInsightsIndexService."
WAREHOUSE_BUCKET = "costagent-test-warehouse"  # the bucket the `bucket` fixture (conftest.py) creates


class MotoPeer(ThreadedMotoServer):
    """ThreadedMotoServer on 127.0.0.1 and a free port; ``throttle_ce`` makes CE calls fail with 400."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.throttle_ce = 0
        self.ce_calls: list[str] = []  # "ok" or "throttled", in order

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)

        def front(environ, start_response):
            return self.front(environ, start_response, app)

        self._server = make_server(self._ip_address, self._port, front, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def front(self, environ, start_response, app):
        """The layer in front of moto: the next ``throttle_ce`` Cost Explorer calls get AWS's throttling error."""
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(CE_TARGET):
            if self.throttle_ce > 0:
                self.throttle_ce -= 1
                self.ce_calls.append("throttled")
                body = json.dumps({"__type": "LimitExceededException", "message": "Rate exceeded"}).encode()
                start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                                   ("Content-Length", str(len(body)))])
                return [body]
            self.ce_calls.append("ok")
        return app(environ, start_response)

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def queue_cost_and_usage(self, results: list[dict]) -> None:
        """Queue GetCostAndUsage answers, one per distinct request, in the order they will be asked: these are
        all the answers from now on. moto's backends live in this process, whichever server answers, and moto
        keeps each answer for any later identical request: answers queued or given for an earlier test (the
        same dates, the same grouping) are dropped first, so they never answer this one."""
        from moto.ce.models import ce_backends

        for backends in ce_backends.values():
            for backend in backends.values():
                backend.cost_usage_results_queue.clear()
                backend.cost_usage_results.clear()
        response = httpx.post(f"{self.url}/moto-api/static/ce/cost-and-usage-results", json={"results": results})
        assert response.status_code == 201, response.text

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset")


def cost_and_usage_pages(costs: pl.DataFrame, start: date, end: date, metric: str, n_pages: int,
                         estimated_from: date | None = None) -> list[dict]:
    """GetCostAndUsage answers for [start, end] split into ``n_pages`` pages chained by NextPageToken."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    by_day = {d: [] for d in days}
    for day, account, service, usd in costs.filter(pl.col("date").is_between(start, end)).sort(
            ["date", "account_id", "service"]).iter_rows():
        by_day[day].append({"Keys": [account, service],
                            "Metrics": {metric: {"Amount": repr(usd), "Unit": "USD"}}})
    chunk = -(-len(days) // n_pages)
    out = []
    for i in range(n_pages):
        results = [{"TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()},
                    "Total": {}, "Groups": by_day[d], "Estimated": estimated_from is not None and d >= estimated_from}
                   for d in days[i * chunk:(i + 1) * chunk]]
        page = {"ResultsByTime": results, "DimensionValueAttributes": [],
                "GroupDefinitions": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
                                     {"Type": "DIMENSION", "Key": "SERVICE"}]}
        if i < n_pages - 1:
            page["NextPageToken"] = f"page-{i + 2}"
        out.append(page)
    return out


def usage_type_answers(costs: pl.DataFrame, start: date, end: date, metric: str,
                       price_per_unit: float = 0.1) -> list[dict]:
    """GetCostAndUsage answers to the source's per-service usage-type requests for [start, end], one page each,
    services in name order. ``costs`` has date, account_id, service, usage_type and cost_usd; the quantity
    is the cost at ``price_per_unit`` (hours)."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    rows = costs.filter(pl.col("date").is_between(start, end)).group_by(
        ["service", "date", "account_id", "usage_type"]).agg(pl.col("cost_usd").sum()).sort(
        ["service", "date", "account_id", "usage_type"])
    out = []
    for _, frame in rows.group_by(["service"], maintain_order=True):
        by_day = {d: [] for d in days}
        for _, day, account, usage_type, usd in frame.iter_rows():
            by_day[day].append({"Keys": [account, usage_type], "Metrics": {
                metric: {"Amount": repr(usd), "Unit": "USD"},
                "UsageQuantity": {"Amount": repr(usd / price_per_unit), "Unit": "Hrs"}}})
        out.append({"ResultsByTime": [{"TimePeriod": {"Start": d.isoformat(),
                                                      "End": (d + timedelta(days=1)).isoformat()},
                                       "Total": {}, "Groups": by_day[d], "Estimated": False} for d in days],
                    "DimensionValueAttributes": []})
    return out
