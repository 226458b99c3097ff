"""nbgrader configuration of the MNIST course, read by every nbgrader command run here.

Run the commands from this folder (nbgrader reads ``nbgrader_config.py`` from the working
directory), with the repository's virtual environment. nbgrader 0.9.6 needs no Jupyter
server for ``generate_assignment``, ``autograde`` and ``generate_feedback``.
"""

import os
import tempfile
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

COURSE_FOLDER = Path(__file__).resolve().parent

c = get_config()  # noqa: F821 (traitlets defines get_config for configuration files)

c.CourseDirectory.course_id = "mnist-pytorch"
c.CourseDirectory.assignment_id = "mnist_pytorch"
c.CourseDirectory.root = str(COURSE_FOLDER)
# The gradebook is a SQLite file in this folder, next to source/, release/ and autograded/.
c.CourseDirectory.db_url = f"sqlite:///{COURSE_FOLDER / 'gradebook.db'}"

# Seconds one cell may run during autograding before nbgrader interrupts it and the cell
# scores 0. The slowest check (test_f1_after_training: two epochs on 6,000 images) takes
# 3 to 5 s on a 2-core CPU, so 300 s leaves room for a laptop 10x slower and for slow but
# correct student code. It is longer than the grading suite's own limits (60 s per call
# into student code, 180 s per check), so those end a hung check first, with feedback.
c.Execute.timeout = 300

# The kernel talks to nbgrader over Unix domain sockets instead of TCP on localhost, so
# autograding opens no network port. Windows has no ipc transport and keeps TCP.
if os.name == "posix":
    c.KernelManager.transport = "ipc"
    # The socket files are "<ip>-<n>". jupyter_client's default prefix is relative, and
    # nbgrader and the kernel (which runs in the notebook's folder) resolve it against
    # different working directories, so nbgrader never reaches the kernel. The absolute
    # prefix is short because a socket path may have at most about 100 characters.
    c.KernelManager.ip = os.path.join(
        tempfile.gettempdir(), f"nbgrader-kernel-{os.getpid()}"
    )

# nbgrader 0.9.6 shows the code of hidden tests in the feedback by default: clear it there,
# as in the released notebook. The hidden cells' output is the check's message alone.
c.GenerateFeedback.preprocessors = [
    GetGrades,
    ClearHiddenTests,
    CSSHTMLHeaderPreprocessor,
]
