"""Renderers: terminal (rich or plain), JSON, Markdown summary, JUnit XML. No target logic."""
