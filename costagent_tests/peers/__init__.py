"""Real protocol peers that tests start on loopback: a Datadog-like HTTP server, moto with throttling."""
