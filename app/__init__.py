"""`python -m app …`, the command CONTRACT §2 names, kept as an alias: the code is `syncgate`."""
