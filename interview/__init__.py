"""InferPrep's Django project and its interview app."""

from importlib.metadata import PackageNotFoundError, version

from interview.celery import app as celery_app

try:
    __version__ = version("inferprep")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "celery_app"]
