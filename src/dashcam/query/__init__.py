"""CloudWatch Logs Insights: parser -> AST -> SQL per dialect -> rows."""
