"""Load-testing tools: generate, record and replay event streams; evaluate dedup; benchmark."""
