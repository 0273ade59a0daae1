"""Prefect tasks and flows around mynn; every task is a thin wrapper over mynn/ or tracking/."""
