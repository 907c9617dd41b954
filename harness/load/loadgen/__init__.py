"""The Locust side of the harness: the locustfile, its plan and its load shapes.

Only Locust imports these modules (``locust -f harness/loadgen/locustfile.py``, or
:class:`harness.load.drivers.LocustDriver` in a subprocess): they need gevent, whose monkey-patching
breaks asyncio and gRPC, so no harness, pytest or system process may import them.
"""
