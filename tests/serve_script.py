"""``attrib`` with a test extractor registered, run as a script (``python tests/serve_script.py --gallery G
serve ...``): it registers at import, so the worker processes ``attrib serve --workers N`` spawns, which
import this file as their main module, have it too. Each embedding appends the process id to the file
named by $ATTRIB_TEST_PID_LOG (when set), so a test sees which processes embedded (and so served)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import register_plugin  # noqa: E402  (importing conftest keeps installed plugins from loading)
from gallery_helpers import CohortColorMean  # noqa: E402

PID_LOG_ENV = "ATTRIB_TEST_PID_LOG"


class PidColorMean(CohortColorMean):
    """CohortColorMean (the same identity key) that logs the process id of every embedding."""

    def embed_batch(self, images):
        if os.environ.get(PID_LOG_ENV):
            with open(os.environ[PID_LOG_ENV], "a") as log:
                log.write(f"{os.getpid()}\n")
        return super().embed_batch(images)


register_plugin("test-serve-pids", PidColorMean)

if __name__ == "__main__":
    from attrib.cli import main

    sys.argv = ["attrib", *sys.argv[1:]]
    main()
