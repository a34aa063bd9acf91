"""AFASA-shaped stub services, as the audit found them in the field (docs/reference-stack.md).

They answer like AFASA's tb-adapter and report service and do what those did: the UbiBot sync
reads the channels and saves nothing, enable/disable answer success and change nothing, a
report is rendered inside the request and returned with 200, and the NATS subscriber only
logs. Standard library only, so they run on a bare Python image. `afasa-ops doctor services`
tells them from a working implementation by their effects.
"""
