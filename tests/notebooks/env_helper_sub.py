"""Fixture: imported by env_helper only; its optional import must not be locked."""
import json

try:
    import ujson as fast_json
except ImportError:
    fast_json = json
