"""Compose files of small Traefik checkouts that several tests judge."""

from __future__ import annotations

# Traefik with the docker provider on the project's real network (`stack_web` for project
# `stack`); {image} is the image under test.
MINIMAL_TRAEFIK = """\
services:
  traefik:
    image: {image}
    command:
      - --providers.docker=true
      - --providers.docker.network=stack_web
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
    networks: [web]
networks:
  web: {{}}
"""

# A checkout running Traefik v2 (the release line it pins within). No v2 binary can be had
# offline, so it is only planned, never started.
TRAEFIK_V2_CHECKOUT = """\
services:
  traefik:
    image: traefik:v2.11.10   # the release line this deployment runs
    command:
      - "--providers.docker=true"
      - "--providers.docker.exposedbydefault=false"
      - "--providers.docker.network=afasa-v2_afasa_net"
      - "--api.insecure=true"
      - "--entrypoints.web.address=:80"
    ports:
      - "18090:80"
      - "18091:8080"
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
    networks: [afasa_net]
networks:
  afasa_net: {}
"""
