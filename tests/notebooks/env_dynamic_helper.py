"""Fixture: loads its dependency dynamically, which static analysis cannot see but verify can."""
import importlib

yaml = importlib.import_module("yaml")
