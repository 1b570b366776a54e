"""The FastAPI facade and the case read model."""
