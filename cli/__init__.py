"""The `embodied-aif` command line: demo, run, bench, plan, select, train, collect."""
