"""One package per target. Each `__init__.py` holds the target's class: everything the rest of bmsdk knows about it."""
