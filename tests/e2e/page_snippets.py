"""Python run in the page by more than one end-to-end test."""

# Keeps what py_runner's logger says in the page (its one-line notices) in `notices`.
KEEP_NOTICES = """
import logging

notices = []
class _KeepNotices(logging.Handler):
    def emit(self, record):
        notices.append(record.getMessage())
logging.getLogger("py_runner").addHandler(_KeepNotices())
"""
