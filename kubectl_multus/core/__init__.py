"""Pure core: paths, checks, fix plans over plain data. No kubernetes, no I/O."""
