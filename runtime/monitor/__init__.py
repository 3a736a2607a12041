"""The resource monitor: sensors -> budgets -> a closed-loop controller -> the pipeline's knobs.

`ResourceMonitor` (monitor.py) is what the daemon builds; `sensors/` reads the board from a
configurable root so tests run on fixture trees copied from real boards.
"""
