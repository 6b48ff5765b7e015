"""Defences against hostile requests: body limits, refusal logs and failed-auth throttling."""
