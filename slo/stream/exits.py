"""Exit codes of ``streamslo worker``: a supervisor restarts on anything but 0.

Use :data:`EXIT_STAGE1_DIED` when the worker stops itself because its stage 1
is gone; the table lives in ``docs/configuration.md``.

| code | meaning |
|---|---|
| 0 | stopped on request (SIGTERM / SIGINT) |
| 1 | invalid spec, or Faust itself crashed (traceback in the log) |
| 2 | the spec file cannot be read or parsed (``slo.spec.EXIT_SPEC_UNREADABLE``) |
| 70 | stage 1 died (child process exited, or the in-process runner raised) |

Example::

    runtime.fail(EXIT_STAGE1_DIED, "stage1: child process exited with code -9")
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_CONFIG: Final = 1
EXIT_STAGE1_DIED: Final = 70  # EX_SOFTWARE of sysexits.h
