"""The pure core: bytes in, counts or statistics out.

No sockets, files, clocks, argv or logging: every function takes bytes or values and returns values,
which is what makes the core fast to test and easy to ship to another process or machine.
"""
