"""HTTP interfaces: dashcam's JSON API, OTLP/HTTP, and the CloudWatch-compatible APIs."""
