"""The former name of :mod:`analysis.importance.signals` (the signals serve every model family): kept so that
old imports keep working."""

from analysis.importance.signals import *  # noqa: F403
