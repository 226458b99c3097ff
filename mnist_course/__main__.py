import sys

from mnist_course.cli import main

sys.exit(main())
