"""Schedules: pure ``step -> value`` functions. The public listing is ``gradxform.schedules``."""
