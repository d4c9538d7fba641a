"""The one exception type for problems a user can fix (bad input, bad config).

The CLI turns it into a single line on stderr and exit code 2; anything else is a bug and keeps its traceback.
"""


class SignlipError(Exception):
    """A user-fixable problem. The message names the problem and the fix in one line."""
