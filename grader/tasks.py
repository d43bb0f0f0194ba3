"""Celery tasks of the grader. Tasks stay thin: parse, call one service, return."""

from __future__ import annotations

import socket

from celery import shared_task

from engine.hardware import detect_hardware


@shared_task(name="grader.ping")
def ping(payload: str) -> dict:
    """Echo a payload with the worker's host and hardware label: proves a real round trip."""
    return {"echo": payload, "host": socket.gethostname(), "hardware": detect_hardware().label}
