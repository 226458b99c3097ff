"""The one exception type that the commands report as a message instead of a traceback."""


class CourseError(Exception):
    """A problem with user input (a file, an option, an implementation) that the user can fix.

    The message names the value and says what to do. The command line prints it and exits
    with status 1.
    """
