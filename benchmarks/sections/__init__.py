"""Benchmark sections: each module has ``run(context)`` (measures into context.results) and
``markdown(results)`` (its lines of the report)."""
