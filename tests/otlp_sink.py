"""The OTLP/HTTP trace receiver now lives in :mod:`streamslo.testing.otlp_sink` (benchmarks use it too).

Kept for the tests and docs that still name ``tests.otlp_sink``; ``python -m tests.otlp_sink`` still runs it.
"""

from streamslo.testing.otlp_sink import OtlpSink, ReceivedSpan, main

__all__ = ["OtlpSink", "ReceivedSpan", "main"]

if __name__ == "__main__":
    main()
