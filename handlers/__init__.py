"""Pure decisions: normalise, deduplicate, route, advance a case."""
