"""Sources: each turns one foreign format into invocation records."""
