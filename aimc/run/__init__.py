"""Running what was compiled: the only stage that starts or signals processes and
containers. Run records, a compiled folder's plan, stop signals, processes proven ours,
the endpoint's readiness, the Docker CLI, server logs and startup phases, and
``aim-engine bench``.
"""
