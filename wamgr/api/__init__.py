"""wamgr's service surface: the HTTP API, webhook delivery and Prometheus metrics."""
