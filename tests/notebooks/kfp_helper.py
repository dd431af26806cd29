"""Fixture: a local module beside kfp_failing.ipynb, shipped into its pod."""


def double(value):
    return 2 * value
