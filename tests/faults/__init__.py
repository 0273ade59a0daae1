"""The fault suite; its helpers are in ``tests.faults.faultkit``."""
