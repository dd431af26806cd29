"""Fixture: a local helper beside the notebook. Its own imports must reach the step's lock."""
import env_helper_sub
import yaml


def load(text):
    return yaml.safe_load(text)
