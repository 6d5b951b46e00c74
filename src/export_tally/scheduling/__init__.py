"""Scheduling: tasks, the backends that run them (a local process pool, Dask), the run that merges
their results, and the checkpoints that let a rerun skip finished work.
"""
