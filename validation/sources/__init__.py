"""Sources of facts: one module per source, each a function returning partial `validation.facts.Facts`."""
