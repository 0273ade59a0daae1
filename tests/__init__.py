"""The test suite, a package so that its helpers are imported as ``tests.servers``,
``tests.httpserver`` and ``tests.faults.faultkit`` (no sys.path edits)."""
